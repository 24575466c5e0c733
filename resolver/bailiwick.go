package resolver

import (
	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/internal/dnsname"
)

// scrub drops the authority and additional records of an upstream answer
// to qname that lie outside its bailiwick, so that they reach neither the
// cache nor a client (a poisoning vector: a forged or careless upstream
// appending "evil.example NS" or a glue address for a name it does not
// speak for).
//
// The names of the answer are qname and the CNAME/DNAME targets of its
// answer section. An SOA or NS record in the authority section is kept
// only when its owner is one of those names or an ancestor of one (the
// zone that holds it); the owners of the kept ones, and the signers of its
// RRSIGs that are such ancestors, are the answer's zones. Every other
// authority record (NSEC, NSEC3, DS, RRSIG …) and every
// additional record (glue, MX and SRV addresses) is kept only when its
// owner is at or below one of the answer's zones or names. The OPT record
// stays.
func scrub(resp *dns.Msg, qname string) {
	if len(resp.Ns) == 0 && len(resp.Extra) == 0 {
		return
	}
	names := []string{dnsname.Lower(qname)}
	for _, rr := range resp.Answer {
		switch v := rr.(type) {
		case *dns.CNAME:
			names = append(names, dnsname.Lower(v.Target))
		case *dns.DNAME:
			names = append(names, dnsname.Lower(v.Target))
		}
	}
	under := func(owner string, roots []string) bool {
		for _, r := range roots {
			if dns.IsSubDomain(r, owner) {
				return true
			}
		}
		return false
	}
	isAnchor := func(rr dns.RR) bool { // an SOA or NS the answer's names are under
		t := rr.Header().Rrtype
		if t != dns.TypeSOA && t != dns.TypeNS {
			return false
		}
		owner := dnsname.Lower(rr.Header().Name)
		for _, n := range names {
			if dns.IsSubDomain(owner, n) {
				return true
			}
		}
		return false
	}
	roots := append([]string(nil), names...) // names and zones
	for _, rr := range resp.Ns {
		if isAnchor(rr) {
			roots = append(roots, dnsname.Lower(rr.Header().Name))
		}
	}
	// The signer of an RRSIG is the apex of the zone that signed it: one
	// that is an ancestor of the answer's names is one of its zones (the
	// NSEC3 proof of a wildcard answer has no SOA next to it).
	for _, sec := range [][]dns.RR{resp.Answer, resp.Ns} {
		for _, rr := range sec {
			sig, ok := rr.(*dns.RRSIG)
			if !ok {
				continue
			}
			signer := dnsname.Lower(sig.SignerName)
			for _, n := range names {
				if dns.IsSubDomain(signer, n) {
					roots = append(roots, signer)
					break
				}
			}
		}
	}
	ns := resp.Ns[:0]
	for _, rr := range resp.Ns {
		t := rr.Header().Rrtype
		if isAnchor(rr) || (t != dns.TypeSOA && t != dns.TypeNS && under(dnsname.Lower(rr.Header().Name), roots)) {
			ns = append(ns, rr)
		}
	}
	resp.Ns = ns
	extra := resp.Extra[:0]
	for _, rr := range resp.Extra {
		if rr.Header().Rrtype == dns.TypeOPT || under(dnsname.Lower(rr.Header().Name), roots) {
			extra = append(extra, rr)
		}
	}
	resp.Extra = extra
}
