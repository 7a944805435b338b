package ck

// Values PKCS#11 3.0 and 3.2 added to the 2.40 header that zconst.go is
// generated from (OASIS PKCS#11 3.0 pkcs11t.h). Keep each family together.
const (
	CKA_UNIQUE_ID AttributeType = 0x00000004

	CKK_EC_EDWARDS    KeyType = 0x00000040
	CKK_EC_MONTGOMERY KeyType = 0x00000041

	CKM_EC_EDWARDS_KEY_PAIR_GEN    MechanismType = 0x00001055
	CKM_EC_MONTGOMERY_KEY_PAIR_GEN MechanismType = 0x00001056
	CKM_EDDSA                      MechanismType = 0x00001057

	CKR_OPERATION_CANCEL_FAILED RV = 0x00000202

	// CK_INTERFACE flags (§5.3).
	CKF_INTERFACE_FORK_SAFE Flags = 0x00000001
)

var v3MechanismNames = []struct {
	v MechanismType
	n string
}{
	{CKM_EC_EDWARDS_KEY_PAIR_GEN, "CKM_EC_EDWARDS_KEY_PAIR_GEN"},
	{CKM_EC_MONTGOMERY_KEY_PAIR_GEN, "CKM_EC_MONTGOMERY_KEY_PAIR_GEN"},
	{CKM_EDDSA, "CKM_EDDSA"},
}

var v3KeyTypeNames = []struct {
	v KeyType
	n string
}{
	{CKK_EC_EDWARDS, "CKK_EC_EDWARDS"},
	{CKK_EC_MONTGOMERY, "CKK_EC_MONTGOMERY"},
}
