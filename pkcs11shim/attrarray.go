package main

import (
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// The nested-template encoding lives in hsm/attr (attr.EncodeTemplate,
// attr.DecodeTemplate), shared with the engine and the wire codec.

func isTemplateAttr(t ck.AttributeType) bool { return attr.IsTemplate(t) }

func encodeTemplate(t []ck.Attribute) []byte { return attr.EncodeTemplate(t) }

func decodeTemplate(b []byte) ([]ck.Attribute, error) { return attr.DecodeTemplate(b) }
