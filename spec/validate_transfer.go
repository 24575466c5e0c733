package spec

import (
	"encoding/base64"
	"fmt"

	"net/netip"
	"os"
	"strings"
)

// TSIGAlgorithms are the accepted tsig_keys[].algorithm values.
var TSIGAlgorithms = []string{"hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha1"}

// validateTransfers checks tsig_keys, the transfer of every source and
// rpz_out.
func (c *Config) validateTransfers(p *problems) {
	keys := map[string]int{}
	for i := range c.TSIGKeys {
		k := &c.TSIGKeys[i]
		path := fmt.Sprintf("tsig_keys[%d]", i)
		if err := checkDomain(k.Name); err != nil {
			p.add(path+".name", "%v", err)
		} else {
			n := TSIGKeyName(k.Name)
			if first, dup := keys[n]; dup {
				p.add(path+".name", "%q is already tsig_keys[%d]", k.Name, first)
			}
			keys[n] = i
		}
		if k.Algorithm != "" {
			checkOneOf(p, path+".algorithm", strings.ToLower(k.Algorithm), TSIGAlgorithms...)
		}
		switch {
		case k.Secret == "" && k.SecretFile == "":
			p.add(path, "one of secret or secret_file is required")
		case k.Secret != "" && k.SecretFile != "":
			p.add(path, "has secret and secret_file: exactly one is allowed")
		case k.Secret != "":
			if _, err := base64.StdEncoding.DecodeString(k.Secret); err != nil {
				p.add(path+".secret", "not base64: %v", err)
			}
		}
	}
	checkKey := func(path, name string) {
		if name == "" {
			return
		}
		if _, ok := keys[TSIGKeyName(name)]; !ok {
			p.add(path, "%q is not the name of a tsig_keys entry", name)
		}
	}
	for i := range c.Jurisdictions {
		for k := range c.Jurisdictions[i].Sources {
			src := &c.Jurisdictions[i].Sources[k]
			t := src.Transfer
			if t == nil {
				continue
			}
			path := fmt.Sprintf("jurisdictions[%d].sources[%d]", i, k)
			if f := src.Format; f != "" && f != FormatRPZ {
				p.add(path+".format", "a transfer source is an RPZ zone: leave format out or set rpz")
			}
			if err := checkDomain(t.Zone); err != nil {
				p.add(path+".transfer.zone", "%v", err)
			}
			if len(t.Primaries) == 0 {
				p.add(path+".transfer.primaries", "at least one primary is required")
			}
			for n, a := range t.Primaries {
				if _, err := ServerAddr(a); err != nil {
					p.add(fmt.Sprintf("%s.transfer.primaries[%d]", path, n), "%v", err)
				}
			}
			checkKey(path+".transfer.tsig_key", t.TSIGKey)
		}
	}
	o := &c.RPZOut
	if o.ZoneSuffix != "" {
		if err := checkDomain(o.ZoneSuffix); err != nil {
			p.add("rpz_out.zone_suffix", "%v", err)
		}
	}
	for i, a := range o.Allow {
		if _, err := parsePrefixOrAddr(a); err != nil {
			p.add(fmt.Sprintf("rpz_out.allow[%d]", i), "%v", err)
		}
	}
	checkKey("rpz_out.tsig_key", o.TSIGKey)
	for i, a := range o.Notify {
		if _, err := ServerAddr(a); err != nil {
			p.add(fmt.Sprintf("rpz_out.notify[%d]", i), "%v", err)
		}
	}
	if o.Journal < 0 {
		p.add("rpz_out.journal", "%d is negative", o.Journal)
	}
}

// TSIGKeyName is the canonical form of a key name: lower case, fully
// qualified.
func TSIGKeyName(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// ServerAddr parses "IP" or "IP:port" (port 53 when left out).
func ServerAddr(s string) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a, 53), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not IP or IP:port", s)
	}
	if ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("%q: port 0", s)
	}
	return ap, nil
}

func parsePrefixOrAddr(s string) (netip.Prefix, error) {
	if pf, err := netip.ParsePrefix(s); err == nil {
		return pf, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a prefix or an address", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// TSIGSecret returns the base64 secret of a key: Secret, or the trimmed
// content of SecretFile.
func (k *TSIGKey) TSIGSecret() (string, error) {
	if k.Secret != "" {
		return k.Secret, nil
	}
	b, err := os.ReadFile(k.SecretFile)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if _, err := base64.StdEncoding.DecodeString(s); err != nil {
		return "", fmt.Errorf("%s: not base64: %v", k.SecretFile, err)
	}
	return s, nil
}
