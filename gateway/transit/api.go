package transit

import (
	"context"
	"time"

	"github.com/gohsm/gohsm/gateway/token"
	"github.com/gohsm/gohsm/hsm/ck"
)

// This file is the engine's contract with the HTTP layer (gateway/http):
// the types of every request and response and the Engine's method set.
// JSON tags are Vault Transit's field names, request bodies as Vault takes
// them and responses as Vault's `data` object, so the HTTP layer decodes
// the body into the request struct, fills the fields Vault takes from the
// path (name aside: hash_algorithm, algorithm, bytes, source), calls the
// method, and writes {"data": response}. A request-level failure is a
// *Error (Status 4xx, or 500 for a token failure); batch responses carry
// their own HTTP status (BatchStatus) because Vault answers a batch with
// failed items with 400 (or partial_failure_response_code) and the
// batch_results in the body.
//
// Numbers and booleans decode leniently (Int, Bool, Duration): Vault's CLI
// sends "true" and "3" as strings, hvac and vault/api send JSON values.

// Exec runs token work on a session of a healthy token of a pool
// (gateway/pool implements it). Key objects are addressed by CKA_ID: find
// maps an ID to the handle on the token f runs on. Replicate copies the
// objects with that CKA_ID to every token of the pool.
type Exec interface {
	Do(ctx context.Context, f func(s token.Session, find func(id []byte) (ck.ObjectHandle, error)) error) error
	Replicate(ctx context.Context, id []byte) error
}

// Config is an Engine's configuration. The zero value is usable.
type Config struct {
	// CiphertextPrefix starts every ciphertext, signature and HMAC this
	// engine makes ("vault:" when empty), e.g. "gohsm:". Decrypt and
	// verify accept only this prefix.
	CiphertextPrefix string
	// Workers bounds the goroutines that run one batch's items in
	// parallel (default 2×GOMAXPROCS).
	Workers int
	// MaxBatch bounds batch_input (default 4,096 items); more is a 400
	// before any work is done.
	MaxBatch int
	// MetaTTL is how long an Engine trusts its cached copy of a key
	// ring's metadata before reading it from the store again (default 1
	// s; negative: never cache). It bounds how late a gateway sees
	// another gateway's rotate or config change; changes made through
	// this Engine are seen at once.
	MetaTTL time.Duration
	// Cloneable makes non-exportable keys that a pool of several tokens
	// can clone (gateway/pool's Replicate): CKA_EXTRACTABLE true with
	// CKA_WRAP_WITH_TRUSTED true, so a key may leave a token only wrapped
	// under a key the token's SO marked trusted (the pool transport key,
	// which cannot decrypt) and its value is never outside a token.
	// False, the default and right for one token, makes them
	// CKA_EXTRACTABLE false: they never leave the token they were made
	// on, by any path, and replication to a second token fails.
	// Exportable keys are CKA_EXTRACTABLE true, without the trusted-wrap
	// restriction, either way.
	Cloneable bool
	// SMProfile names the SM vendor code profile the tokens use ("" is
	// gohsm's default), so sm2 and sm4-gcm keys use the tokens' codes.
	SMProfile string
}

// Error is a request-level failure: Status is the HTTP status (400 bad
// request, 404 unknown key, 500 token failure), Msg the message Vault's
// {"errors": [Msg]} carries. Msg never holds plaintext or key material.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Batch is embedded in every batch-capable response: BatchStatus is the
// HTTP status the response is to be sent with, by Vault's rule (200; 400
// when an item failed on its input, 500 when an item failed on the token;
// partial_failure_response_code instead when some items also succeeded
// and the request gave one). Items and Failed count the batch.
type Batch struct {
	BatchStatus int `json:"-"`
	Items       int `json:"-"`
	Failed      int `json:"-"`
}

// Status is the HTTP status of a response that embeds Batch (200 for a
// single request).
func (b Batch) Status() int {
	if b.BatchStatus == 0 {
		return 200
	}
	return b.BatchStatus
}

// ---- keys ----

// CreateKeyRequest is POST /transit/keys/:name.
type CreateKeyRequest struct {
	Type                 string   `json:"type,omitempty"` // default aes256-gcm96
	Exportable           Bool     `json:"exportable,omitempty"`
	AllowPlaintextBackup Bool     `json:"allow_plaintext_backup,omitempty"`
	Derived              Bool     `json:"derived,omitempty"`
	ConvergentEncryption Bool     `json:"convergent_encryption,omitempty"`
	KeySize              Int      `json:"key_size,omitempty"` // hmac keys: bytes, 32..512
	AutoRotatePeriod     Duration `json:"auto_rotate_period,omitempty"`
}

// KeyVersion is one entry of ReadKeyResponse.Keys for an asymmetric key.
// For a symmetric key Vault gives the creation time in Unix seconds
// instead; KeyEntry holds either.
type KeyVersion struct {
	Name         string `json:"name"`
	PublicKey    string `json:"public_key"`
	CreationTime string `json:"creation_time"`
}

// ReadKeyResponse is GET /transit/keys/:name (also the answer of create,
// config and rotate, as Vault 1.12+ gives).
type ReadKeyResponse struct {
	Name                 string              `json:"name"`
	Type                 string              `json:"type"`
	Keys                 map[string]KeyEntry `json:"keys"`
	LatestVersion        int                 `json:"latest_version"`
	MinAvailableVersion  int                 `json:"min_available_version"`
	MinDecryptionVersion int                 `json:"min_decryption_version"`
	MinEncryptionVersion int                 `json:"min_encryption_version"`
	DeletionAllowed      bool                `json:"deletion_allowed"`
	Exportable           bool                `json:"exportable"`
	AllowPlaintextBackup bool                `json:"allow_plaintext_backup"`
	Derived              bool                `json:"derived"`
	ConvergentEncryption bool                `json:"convergent_encryption"`
	ImportedKey          bool                `json:"imported_key"`
	AutoRotatePeriod     int64               `json:"auto_rotate_period"` // seconds
	KeySize              int                 `json:"key_size,omitempty"`
	SupportsEncryption   bool                `json:"supports_encryption"`
	SupportsDecryption   bool                `json:"supports_decryption"`
	SupportsDerivation   bool                `json:"supports_derivation"`
	SupportsSigning      bool                `json:"supports_signing"`
	KDF                  string              `json:"kdf,omitempty"`
}

// KeyEntry is a version's entry in keys: Unix seconds (symmetric) or a
// KeyVersion (asymmetric). It marshals as the one it holds.
type KeyEntry struct {
	Created int64
	Public  *KeyVersion
}

// ListKeysResponse is LIST /transit/keys.
type ListKeysResponse struct {
	Keys []string `json:"keys"`
}

// ConfigKeyRequest is POST /transit/keys/:name/config. Absent fields
// leave the setting as it is.
type ConfigKeyRequest struct {
	MinDecryptionVersion *Int      `json:"min_decryption_version,omitempty"`
	MinEncryptionVersion *Int      `json:"min_encryption_version,omitempty"`
	DeletionAllowed      *Bool     `json:"deletion_allowed,omitempty"`
	Exportable           *Bool     `json:"exportable,omitempty"`
	AllowPlaintextBackup *Bool     `json:"allow_plaintext_backup,omitempty"`
	AutoRotatePeriod     *Duration `json:"auto_rotate_period,omitempty"`
}

// RotateKeyRequest is POST /transit/keys/:name/rotate.
type RotateKeyRequest struct{}

// TrimKeyRequest is POST /transit/keys/:name/trim.
type TrimKeyRequest struct {
	MinAvailableVersion Int `json:"min_available_version"`
}

// ---- encrypt, decrypt, rewrap ----

// EncryptItem is one encrypt input (the request itself, or a batch item).
type EncryptItem struct {
	Plaintext      string `json:"plaintext"`                 // base64
	Context        string `json:"context,omitempty"`         // base64, bound as AAD
	AssociatedData string `json:"associated_data,omitempty"` // base64, bound as AAD
	Nonce          string `json:"nonce,omitempty"`           // refused: the token makes nonces
	KeyVersion     Int    `json:"key_version,omitempty"`
	Reference      string `json:"reference,omitempty"`
}

// EncryptRequest is POST /transit/encrypt/:name.
type EncryptRequest struct {
	EncryptItem
	Type                       string        `json:"type,omitempty"` // create-on-encrypt type
	ConvergentEncryption       Bool          `json:"convergent_encryption,omitempty"`
	BatchInput                 []EncryptItem `json:"batch_input,omitempty"`
	PartialFailureResponseCode Int           `json:"partial_failure_response_code,omitempty"`
}

// EncryptResult is an encrypt answer (single or a batch item).
type EncryptResult struct {
	Ciphertext string `json:"ciphertext,omitempty"`
	KeyVersion int    `json:"key_version,omitempty"`
	Reference  string `json:"reference,omitempty"`
	Error      string `json:"error,omitempty"`
}

// EncryptResponse is the data of an encrypt answer: the single result's
// fields, or batch_results.
type EncryptResponse struct {
	Batch
	Ciphertext   string          `json:"ciphertext,omitempty"`
	KeyVersion   int             `json:"key_version,omitempty"`
	BatchResults []EncryptResult `json:"batch_results,omitempty"`
}

// DecryptItem is one decrypt input.
type DecryptItem struct {
	Ciphertext     string `json:"ciphertext"`
	Context        string `json:"context,omitempty"`
	AssociatedData string `json:"associated_data,omitempty"`
	Nonce          string `json:"nonce,omitempty"`
	Reference      string `json:"reference,omitempty"`
}

// DecryptRequest is POST /transit/decrypt/:name.
type DecryptRequest struct {
	DecryptItem
	BatchInput                 []DecryptItem `json:"batch_input,omitempty"`
	PartialFailureResponseCode Int           `json:"partial_failure_response_code,omitempty"`
}

// DecryptResult is a decrypt answer. Plaintext is base64; it is present
// (possibly "") on success.
type DecryptResult struct {
	Plaintext *string `json:"plaintext,omitempty"`
	Reference string  `json:"reference,omitempty"`
	Error     string  `json:"error,omitempty"`
}

// DecryptResponse is the data of a decrypt answer.
type DecryptResponse struct {
	Batch
	Plaintext    *string         `json:"plaintext,omitempty"`
	BatchResults []DecryptResult `json:"batch_results,omitempty"`
}

// RewrapItem is one rewrap input: the ciphertext is opened and sealed
// again under key_version (default the latest) inside the engine; the
// plaintext never leaves it.
type RewrapItem struct {
	Ciphertext     string `json:"ciphertext"`
	Context        string `json:"context,omitempty"`
	AssociatedData string `json:"associated_data,omitempty"`
	Nonce          string `json:"nonce,omitempty"`
	KeyVersion     Int    `json:"key_version,omitempty"`
	Reference      string `json:"reference,omitempty"`
}

// RewrapRequest is POST /transit/rewrap/:name.
type RewrapRequest struct {
	RewrapItem
	BatchInput                 []RewrapItem `json:"batch_input,omitempty"`
	PartialFailureResponseCode Int          `json:"partial_failure_response_code,omitempty"`
}

// RewrapResponse is the data of a rewrap answer (EncryptResult's fields).
type RewrapResponse = EncryptResponse

// ---- data keys ----

// DataKeyRequest is POST /transit/datakey/(plaintext|wrapped)/:name.
type DataKeyRequest struct {
	Context        string `json:"context,omitempty"`
	AssociatedData string `json:"associated_data,omitempty"`
	Nonce          string `json:"nonce,omitempty"`
	Bits           Int    `json:"bits,omitempty"` // 128, 256 (default), 512
	KeyVersion     Int    `json:"key_version,omitempty"`
}

// DataKeyResponse is the data of a datakey answer; Plaintext (base64)
// only for datakey/plaintext.
type DataKeyResponse struct {
	Ciphertext string `json:"ciphertext"`
	KeyVersion int    `json:"key_version"`
	Plaintext  string `json:"plaintext,omitempty"`
}

// ---- sign, verify, hmac ----

// SignItem is one sign input.
type SignItem struct {
	Input     string `json:"input"` // base64
	Context   string `json:"context,omitempty"`
	Reference string `json:"reference,omitempty"`
}

// SignRequest is POST /transit/sign/:name(/:hash_algorithm).
type SignRequest struct {
	SignItem
	KeyVersion                 Int        `json:"key_version,omitempty"`
	HashAlgorithm              string     `json:"hash_algorithm,omitempty"` // sha2-256 default; also the path's
	Algorithm                  string     `json:"algorithm,omitempty"`      // Vault's older name for hash_algorithm
	Prehashed                  Bool       `json:"prehashed,omitempty"`
	SignatureAlgorithm         string     `json:"signature_algorithm,omitempty"`  // pss (default) | pkcs1v15, RSA
	MarshalingAlgorithm        string     `json:"marshaling_algorithm,omitempty"` // asn1 (default) | jws, ECDSA
	SaltLength                 string     `json:"salt_length,omitempty"`          // auto | hash | bytes, PSS
	BatchInput                 []SignItem `json:"batch_input,omitempty"`
	PartialFailureResponseCode Int        `json:"partial_failure_response_code,omitempty"`
}

// SignResult is a sign answer.
type SignResult struct {
	Signature  string `json:"signature,omitempty"`
	KeyVersion int    `json:"key_version,omitempty"`
	PublicKey  string `json:"publickey,omitempty"`
	Reference  string `json:"reference,omitempty"`
	Error      string `json:"error,omitempty"`
}

// SignResponse is the data of a sign answer.
type SignResponse struct {
	Batch
	Signature    string       `json:"signature,omitempty"`
	KeyVersion   int          `json:"key_version,omitempty"`
	BatchResults []SignResult `json:"batch_results,omitempty"`
}

// VerifyItem is one verify input: signature (from sign) or hmac (from
// hmac), not both.
type VerifyItem struct {
	Input     string `json:"input"`
	Signature string `json:"signature,omitempty"`
	HMAC      string `json:"hmac,omitempty"`
	Context   string `json:"context,omitempty"`
	Reference string `json:"reference,omitempty"`
}

// VerifyRequest is POST /transit/verify/:name(/:hash_algorithm).
type VerifyRequest struct {
	VerifyItem
	HashAlgorithm              string       `json:"hash_algorithm,omitempty"`
	Algorithm                  string       `json:"algorithm,omitempty"`
	Prehashed                  Bool         `json:"prehashed,omitempty"`
	SignatureAlgorithm         string       `json:"signature_algorithm,omitempty"`
	MarshalingAlgorithm        string       `json:"marshaling_algorithm,omitempty"`
	SaltLength                 string       `json:"salt_length,omitempty"`
	BatchInput                 []VerifyItem `json:"batch_input,omitempty"`
	PartialFailureResponseCode Int          `json:"partial_failure_response_code,omitempty"`
}

// VerifyResult is a verify answer.
type VerifyResult struct {
	Valid     bool   `json:"valid"`
	Reference string `json:"reference,omitempty"`
	Error     string `json:"error,omitempty"`
}

// VerifyResponse is the data of a verify answer. Valid is false, with no
// error, for a well-formed signature that does not verify.
type VerifyResponse struct {
	Batch
	Valid        bool           `json:"valid"`
	BatchResults []VerifyResult `json:"batch_results,omitempty"`
}

// HMACItem is one hmac input.
type HMACItem struct {
	Input     string `json:"input"`
	Reference string `json:"reference,omitempty"`
}

// HMACRequest is POST /transit/hmac/:name(/:algorithm).
type HMACRequest struct {
	HMACItem
	KeyVersion                 Int        `json:"key_version,omitempty"`
	Algorithm                  string     `json:"algorithm,omitempty"` // sha2-256 default; also the path's
	BatchInput                 []HMACItem `json:"batch_input,omitempty"`
	PartialFailureResponseCode Int        `json:"partial_failure_response_code,omitempty"`
}

// HMACResult is an hmac answer.
type HMACResult struct {
	HMAC      string `json:"hmac,omitempty"`
	Reference string `json:"reference,omitempty"`
	Error     string `json:"error,omitempty"`
}

// HMACResponse is the data of an hmac answer.
type HMACResponse struct {
	Batch
	HMAC         string       `json:"hmac,omitempty"`
	BatchResults []HMACResult `json:"batch_results,omitempty"`
}

// ---- random ----

// RandomRequest is POST /transit/random(/:source)(/:bytes).
type RandomRequest struct {
	Bytes  Int    `json:"bytes,omitempty"`  // default 32, at most 1 MiB
	Format string `json:"format,omitempty"` // base64 (default) | hex
	Source string `json:"source,omitempty"` // platform|seal|all: accepted, the token is the source
}

// RandomResponse is the data of a random answer.
type RandomResponse struct {
	RandomBytes string `json:"random_bytes"`
}

// The Engine's methods (engine.go, ops_*.go), for the HTTP layer:
//
//	func New(mount string, ex Exec, meta kv.Store, cfg Config) (*Engine, error)
//	func (e *Engine) CreateKey(ctx context.Context, name string, r *CreateKeyRequest) (*ReadKeyResponse, error)
//	func (e *Engine) ReadKey(ctx context.Context, name string) (*ReadKeyResponse, error)
//	func (e *Engine) ListKeys(ctx context.Context) (*ListKeysResponse, error)
//	func (e *Engine) DeleteKey(ctx context.Context, name string) error
//	func (e *Engine) ConfigKey(ctx context.Context, name string, r *ConfigKeyRequest) (*ReadKeyResponse, error)
//	func (e *Engine) RotateKey(ctx context.Context, name string, r *RotateKeyRequest) (*ReadKeyResponse, error)
//	func (e *Engine) TrimKey(ctx context.Context, name string, r *TrimKeyRequest) (*ReadKeyResponse, error)
//	func (e *Engine) Encrypt(ctx context.Context, name string, r *EncryptRequest) (*EncryptResponse, error)
//	func (e *Engine) Decrypt(ctx context.Context, name string, r *DecryptRequest) (*DecryptResponse, error)
//	func (e *Engine) Rewrap(ctx context.Context, name string, r *RewrapRequest) (*RewrapResponse, error)
//	func (e *Engine) DataKey(ctx context.Context, name string, plaintext bool, r *DataKeyRequest) (*DataKeyResponse, error)
//	func (e *Engine) Sign(ctx context.Context, name string, r *SignRequest) (*SignResponse, error)
//	func (e *Engine) Verify(ctx context.Context, name string, r *VerifyRequest) (*VerifyResponse, error)
//	func (e *Engine) HMAC(ctx context.Context, name string, r *HMACRequest) (*HMACResponse, error)
//	func (e *Engine) Random(ctx context.Context, r *RandomRequest) (*RandomResponse, error)
//	func (e *Engine) Mount() string
//	func (e *Engine) Types() []string                               // key types this engine makes
//	func (e *Engine) AutoRotate(ctx context.Context) ([]string, error) // call periodically (e.g. each minute)
//	func (e *Engine) Stats() Stats                                  // counters for metrics
//	func AsError(err error) *Error                                  // any method error as status + message
//
// An Exec that also implements Destroyer (gateway/pool does) has trimmed
// and deleted versions destroyed on every token. With a pool of more than
// one token, set Config.Cloneable, or keys cannot be replicated.
//
// Every method returns either a response or an error; an error that is
// not a *Error is a 500 (AsError converts). Encrypt on a missing key
// creates it (type from the request, aes256-gcm96 default), as Vault does
// when the caller may write to encrypt/:name (the HTTP layer's policy
// decides that before calling).
