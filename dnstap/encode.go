package dnstap

import (
	"net/netip"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers and enum values of dnstap.proto
// (https://github.com/dnstap/dnstap.pb/blob/master/dnstap.proto).
const (
	// Dnstap
	fIdentity    = 1
	fVersion     = 2
	fMessage     = 14
	fType        = 15
	typeMessage  = 1
	fMsgType     = 1
	fFamily      = 2
	fProtocol    = 3
	fQueryAddr   = 4
	fRespAddr    = 5
	fQueryPort   = 6
	fRespPort    = 7
	fQuerySec    = 8
	fQueryNsec   = 9
	fQueryMsg    = 10
	fRespSec     = 12
	fRespNsec    = 13
	fRespMsg     = 14
	fPolicy      = 15
	fPolicyType  = 1
	fPolicyRule  = 2
	fPolicyAct   = 3
	fPolicyMatch = 4
	fPolicyValue = 5

	familyINET  = 1
	familyINET6 = 2

	matchQNAME = 1
)

// MessageType is dnstap's Message.Type.
type MessageType int32

// The message types jurisdns sends.
const (
	ClientQuery       MessageType = 5
	ClientResponse    MessageType = 6
	ForwarderQuery    MessageType = 7
	ForwarderResponse MessageType = 8
)

// Protocol is dnstap's SocketProtocol: the transport of a message.
type Protocol int32

// The transports.
const (
	UDP Protocol = 1
	TCP Protocol = 2
	DoT Protocol = 3
	DoH Protocol = 4
)

// Action is dnstap's Policy.Action.
type Action int32

// The policy actions (dnstap.proto's names).
const (
	// ActionNXDOMAIN: answered NXDOMAIN.
	ActionNXDOMAIN Action = 1
	// ActionNODATA: answered with an empty answer section.
	ActionNODATA Action = 2
	// ActionPASS: the answer was not altered (a report-mode hit).
	ActionPASS Action = 3
	// ActionDROP: no answer was sent.
	ActionDROP Action = 4
	// ActionLocalData: answered with data from the policy (null or
	// sinkhole addresses, REFUSED, the SERVFAIL of a jurisdiction failing
	// closed).
	ActionLocalData Action = 6
)

// Policy is the operator policy applied to a message: dnstap's Policy, with
// match QNAME (the query name, or a CNAME target of the answer, which the
// policy treats as a query name as RPZ does).
type Policy struct {
	// Jurisdiction and Entry make Policy.rule: "au-gov deepseek.com" (the
	// jurisdiction's ID and the list entry that matched, "*.name" for an
	// entry that covers only the names below it).
	Jurisdiction, Entry string
	// Target is the CNAME target that matched when it was not the query
	// name; the rule then reads "au-gov deepseek.com via CNAME target".
	Target string
	// Action is what was done.
	Action Action
	// Value is the jurisdiction's instrument (its legal basis).
	Value string
}

// ruleLen is the length of the rule text of p.
func (p *Policy) ruleLen() int {
	n := len(p.Jurisdiction) + 1 + len(p.Entry)
	if p.Target != "" {
		n += len(viaCNAME) + len(p.Target)
	}
	return n
}

// appendRule appends the rule text of p.
func (p *Policy) appendRule(b []byte) []byte {
	b = append(append(append(b, p.Jurisdiction...), ' '), p.Entry...)
	if p.Target != "" {
		b = append(append(b, viaCNAME...), p.Target...)
	}
	return b
}

const viaCNAME = " via CNAME "

// policyType is Policy.type of every policy jurisdns applies.
const policyType = "jurisdns"

// Event is one query and its answer, or one exchange with an upstream: one
// event becomes a query and a response message (CLIENT_QUERY and
// CLIENT_RESPONSE, or FORWARDER_QUERY and FORWARDER_RESPONSE).
type Event struct {
	// Forwarder: an exchange with an upstream; otherwise a client's query.
	Forwarder bool
	// Protocol is the transport.
	Protocol Protocol
	// Client is the initiator (the client; for a forwarder event it is
	// left unset, the local address of the upstream socket is not known).
	Client netip.AddrPort
	// Server is the responder (the upstream of a forwarder event; unset
	// for a client event).
	Server netip.AddrPort
	// QueryTime is when the query was received (client) or sent
	// (forwarder); ResponseTime when the response was sent or received.
	QueryTime, ResponseTime time.Time
	// Query and Response are the wire messages; Response is nil when none
	// was sent or received.
	Query, Response []byte
	// Policy is the policy applied, or nil.
	Policy *Policy
}

// appendFrame appends the dnstap frame (a Dnstap protobuf) of message mt of
// ev to b, using scratch for the Message. It returns the frame and the
// scratch buffer (grown) for reuse.
func appendFrame(b, scratch []byte, identity, version []byte, mt MessageType, ev *Event) (frame, scratchOut []byte) {
	m := appendMessage(scratch[:0], mt, ev)
	b = appendHead(b, identity, version, len(m))
	b = append(b, m...)
	return appendTail(b), m
}

// appendHead appends the fields of a Dnstap frame that come before its
// Message (of mlen bytes): identity, version, and the Message's tag and
// length.
func appendHead(b, identity, version []byte, mlen int) []byte {
	if len(identity) > 0 {
		b = protowire.AppendTag(b, fIdentity, protowire.BytesType)
		b = protowire.AppendBytes(b, identity)
	}
	if len(version) > 0 {
		b = protowire.AppendTag(b, fVersion, protowire.BytesType)
		b = protowire.AppendBytes(b, version)
	}
	b = protowire.AppendTag(b, fMessage, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(mlen))
}

// appendTail appends the field of a Dnstap frame after its Message: type
// MESSAGE.
func appendTail(b []byte) []byte {
	b = protowire.AppendTag(b, fType, protowire.VarintType)
	return protowire.AppendVarint(b, typeMessage)
}

// appendMessage appends the Message (dnstap's Message) of type mt of ev.
func appendMessage(m []byte, mt MessageType, ev *Event) []byte {
	m = protowire.AppendTag(m, fMsgType, protowire.VarintType)
	m = protowire.AppendVarint(m, uint64(mt))
	addr := ev.Client
	if ev.Forwarder {
		addr = ev.Server
	}
	if addr.IsValid() {
		fam := uint64(familyINET6)
		if addr.Addr().Unmap().Is4() {
			fam = familyINET
		}
		m = protowire.AppendTag(m, fFamily, protowire.VarintType)
		m = protowire.AppendVarint(m, fam)
	}
	if ev.Protocol != 0 {
		m = protowire.AppendTag(m, fProtocol, protowire.VarintType)
		m = protowire.AppendVarint(m, uint64(ev.Protocol))
	}
	m = appendAddr(m, fQueryAddr, fQueryPort, ev.Client)
	m = appendAddr(m, fRespAddr, fRespPort, ev.Server)
	if !ev.QueryTime.IsZero() {
		m = appendTime(m, fQuerySec, fQueryNsec, ev.QueryTime)
	}
	isQuery := mt == ClientQuery || mt == ForwarderQuery
	if isQuery {
		m = protowire.AppendTag(m, fQueryMsg, protowire.BytesType)
		m = protowire.AppendBytes(m, ev.Query)
	} else {
		if !ev.ResponseTime.IsZero() {
			m = appendTime(m, fRespSec, fRespNsec, ev.ResponseTime)
		}
		if ev.Response != nil {
			m = protowire.AppendTag(m, fRespMsg, protowire.BytesType)
			m = protowire.AppendBytes(m, ev.Response)
		}
	}
	if p := ev.Policy; p != nil {
		size := protowire.SizeTag(fPolicyType) + protowire.SizeBytes(len(policyType)) +
			protowire.SizeTag(fPolicyRule) + protowire.SizeBytes(p.ruleLen()) +
			protowire.SizeTag(fPolicyAct) + protowire.SizeVarint(uint64(p.Action)) +
			protowire.SizeTag(fPolicyMatch) + protowire.SizeVarint(matchQNAME)
		if p.Value != "" {
			size += protowire.SizeTag(fPolicyValue) + protowire.SizeBytes(len(p.Value))
		}
		m = protowire.AppendTag(m, fPolicy, protowire.BytesType)
		m = protowire.AppendVarint(m, uint64(size))
		m = protowire.AppendTag(m, fPolicyType, protowire.BytesType)
		m = protowire.AppendString(m, policyType)
		m = protowire.AppendTag(m, fPolicyRule, protowire.BytesType)
		m = protowire.AppendVarint(m, uint64(p.ruleLen()))
		m = p.appendRule(m)
		m = protowire.AppendTag(m, fPolicyAct, protowire.VarintType)
		m = protowire.AppendVarint(m, uint64(p.Action))
		m = protowire.AppendTag(m, fPolicyMatch, protowire.VarintType)
		m = protowire.AppendVarint(m, matchQNAME)
		if p.Value != "" {
			m = protowire.AppendTag(m, fPolicyValue, protowire.BytesType)
			m = protowire.AppendString(m, p.Value)
		}
	}
	return m
}

// appendAddr appends an address field (4 or 16 octets) and its port.
func appendAddr(b []byte, fAddr, fPort protowire.Number, ap netip.AddrPort) []byte {
	if !ap.IsValid() {
		return b
	}
	a := ap.Addr().Unmap()
	b = protowire.AppendTag(b, fAddr, protowire.BytesType)
	if a.Is4() {
		v := a.As4()
		b = protowire.AppendBytes(b, v[:])
	} else {
		v := a.As16()
		b = protowire.AppendBytes(b, v[:])
	}
	b = protowire.AppendTag(b, fPort, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(ap.Port()))
}

// appendTime appends a time as dnstap's seconds and nanoseconds fields.
func appendTime(b []byte, fSec, fNsec protowire.Number, t time.Time) []byte {
	b = protowire.AppendTag(b, fSec, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(t.Unix()))
	b = protowire.AppendTag(b, fNsec, protowire.Fixed32Type)
	return protowire.AppendFixed32(b, uint32(t.Nanosecond()))
}
