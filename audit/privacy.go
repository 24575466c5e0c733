package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
)

// Client privacy modes, the values of the audit.client_privacy setting.
const (
	// PrivacyFull records the client address as it is.
	PrivacyFull = "full"
	// PrivacyTruncate records the client's /24 (IPv4) or /56 (IPv6) prefix.
	PrivacyTruncate = "truncate"
	// PrivacyHash records a keyed hash of the client address.
	PrivacyHash = "hash"
	// PrivacyNone records no client at all.
	PrivacyNone = "none"
)

// hashHexLen is how many hex characters of the keyed hash ClientString keeps
// (64 bits: enough to tell clients apart in one log, short enough to read).
const hashHexLen = 16

// ValidPrivacy reports whether s is one of the client privacy modes
// (full, truncate, hash, none).
func ValidPrivacy(s string) bool {
	switch s {
	case PrivacyFull, PrivacyTruncate, PrivacyHash, PrivacyNone:
		return true
	}
	return false
}

// ClientString renders a client address for a log record according to privacy:
//
//   - full: the address ("192.0.2.7", "2001:db8::1"), without any IPv6 zone;
//   - truncate: the covering prefix, /24 for IPv4 and /56 for IPv6
//     ("192.0.2.0/24", "2001:db8:0:ab00::/56");
//   - hash: the first 16 hex characters of HMAC-SHA256(salt, address bytes);
//   - none, or any unknown mode: "".
//
// IPv4-mapped IPv6 addresses are treated as IPv4. An invalid address gives "".
// The hash mode is keyed because the IPv4 address space is small enough to
// invert a plain hash by brute force; salt should therefore be a secret (for
// example random bytes kept by the operator). With an empty salt the hash is
// still computed but offers little privacy.
func ClientString(addr netip.Addr, privacy string, salt []byte) string {
	if !addr.IsValid() {
		return ""
	}
	addr = addr.Unmap().WithZone("")
	switch privacy {
	case PrivacyFull:
		return addr.String()
	case PrivacyTruncate:
		bits := 56
		if addr.Is4() {
			bits = 24
		}
		p, err := addr.Prefix(bits)
		if err != nil {
			return ""
		}
		return p.String()
	case PrivacyHash:
		m := hmac.New(sha256.New, salt)
		m.Write(addr.AsSlice())
		var sum [sha256.Size]byte
		return hex.EncodeToString(m.Sum(sum[:0]))[:hashHexLen]
	}
	return ""
}
