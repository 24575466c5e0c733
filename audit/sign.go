package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Checkpoint is a signed statement about the chain: its first Count lines
// end in the line whose hash is Head. In the log, a checkpoint is a line of
// its own (event "checkpoint") with seq Count+1 and prev Head, so it also
// covers every line before it. Anyone who keeps a copy of a checkpoint can
// later check that the log still holds those Count lines, unchanged
// ([VerifyOptions.Checkpoint]).
type Checkpoint struct {
	// Count is the number of chain lines covered: seq 1 … Count.
	Count uint64 `json:"count"`
	// Head is the hash of line Count (Genesis when Count is 0).
	Head string `json:"head"`
	// Time is when the checkpoint was made (UTC).
	Time time.Time `json:"time"`
	// Reason is why it was made: open (the Writer started), rotate (first
	// line of a new file), records (Options.CheckpointRecords lines since
	// the last one), interval (Options.CheckpointInterval passed) or close.
	Reason string `json:"reason"`
	// Key identifies the signing key: [KeyID] of its public key.
	Key string `json:"key"`
	// Sig is the standard base64 Ed25519 signature of [Checkpoint.Message].
	Sig string `json:"sig"`
}

// Checkpoint reasons.
const (
	ReasonOpen     = "open"
	ReasonRotate   = "rotate"
	ReasonRecords  = "records"
	ReasonInterval = "interval"
	ReasonClose    = "close"
)

// Message returns the bytes that Sig signs: five lines of text,
//
//	jurisdns audit checkpoint v1
//	count <Count in decimal>
//	head <Head>
//	time <Time in RFC 3339 with nanoseconds, UTC>
//	reason <Reason>
//
// each ending in a newline.
func (c *Checkpoint) Message() []byte {
	var b bytes.Buffer
	b.WriteString("jurisdns audit checkpoint v1\n")
	b.WriteString("count " + strconv.FormatUint(c.Count, 10) + "\n")
	b.WriteString("head " + c.Head + "\n")
	b.WriteString("time " + c.Time.UTC().Format(time.RFC3339Nano) + "\n")
	b.WriteString("reason " + c.Reason + "\n")
	return b.Bytes()
}

// sign sets Key and Sig.
func (c *Checkpoint) sign(key ed25519.PrivateKey) {
	c.Key = KeyID(key.Public().(ed25519.PublicKey))
	c.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(key, c.Message()))
}

// Verify checks the signature of c with pub.
func (c *Checkpoint) Verify(pub ed25519.PublicKey) error {
	if !validHash(c.Head) {
		return fmt.Errorf("head %q is not a hex SHA-256", clip(c.Head, 80))
	}
	sig, err := base64.StdEncoding.DecodeString(c.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return errors.New("signature is not a base64 Ed25519 signature")
	}
	if !ed25519.Verify(pub, c.Message(), sig) {
		if id := KeyID(pub); c.Key != id {
			return fmt.Errorf("signature does not verify: signed by key %q, the public key given is %q", clip(c.Key, 40), id)
		}
		return errors.New("signature does not verify: the lines before it were changed (edited or re-chained), or the checkpoint itself")
	}
	return nil
}

// KeyID names a public key: the first 8 bytes of the SHA-256 of its raw 32
// bytes, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// ReadCheckpoint reads a checkpoint kept elsewhere: a JSON object with the
// fields of [Checkpoint] (what /api/status gives under audit.checkpoint), or
// a checkpoint line of the log.
func ReadCheckpoint(path string) (Checkpoint, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit: checkpoint: %w", err)
	}
	var v struct {
		Checkpoint
		Nested *Checkpoint `json:"checkpoint"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(b), &v); err != nil {
		return Checkpoint{}, fmt.Errorf("audit: checkpoint %s: %w", path, err)
	}
	c := v.Checkpoint
	if v.Nested != nil {
		c = *v.Nested
	}
	if c.Sig == "" || !validHash(c.Head) {
		return Checkpoint{}, fmt.Errorf("audit: checkpoint %s: not a checkpoint (want count, head, time, reason, key, sig)", path)
	}
	return c, nil
}

// Key files are PEM: the private key as PKCS #8 ("PRIVATE KEY", what
// `openssl genpkey -algorithm ed25519` writes), the public key as PKIX
// ("PUBLIC KEY", what `openssl pkey -pubout` writes).

// ReadPrivateKey reads an Ed25519 private key from a PEM PKCS #8 file.
func ReadPrivateKey(path string) (ed25519.PrivateKey, error) {
	block, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: a %T, want an Ed25519 key (openssl genpkey -algorithm ed25519)", path, k)
	}
	return ek, nil
}

// ReadPublicKey reads an Ed25519 public key from a PEM PKIX file. A private
// key file is accepted too (its public half is used).
func ReadPublicKey(path string) (ed25519.PublicKey, error) {
	block, err := readPEM(path, "PUBLIC KEY", "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	if block.Type == "PRIVATE KEY" {
		k, err := ReadPrivateKey(path)
		if err != nil {
			return nil, err
		}
		return k.Public().(ed25519.PublicKey), nil
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ek, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%s: a %T, want an Ed25519 public key", path, k)
	}
	return ek, nil
}

func readPEM(path string, types ...string) (*pem.Block, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("%s: no PEM block of type %q", path, types[0])
		}
		for _, t := range types {
			if block.Type == t {
				return block, nil
			}
		}
	}
}

// GenerateKey returns a new Ed25519 key pair as PEM: the private key as
// PKCS #8 and the public key as PKIX.
func GenerateKey() (privPEM, pubPEM []byte, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	p8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, err
	}
	pk, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pk}), nil
}
