package resolver

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

const (
	// dohMediaType is the media type of a DNS message in DoH (RFC 8484 §6).
	dohMediaType = "application/dns-message"
	// maxDoHBody is the largest DNS message a POST may carry: 64 KiB.
	maxDoHBody = 65535
)

// ServeHTTP answers DoH requests (RFC 8484) on the runtime's doh.path: GET
// with the query in the base64url dns parameter, POST with it as the body
// (application/dns-message, at most 64 KiB). A valid query gets 200 with
// the DNS answer, whatever its rcode, and Cache-Control max-age set to the
// smallest TTL of the answer (RFC 8484 §5.1). Bad requests get 400 (no or
// bad dns parameter, not a DNS query), 405 (method), 413 (body too large),
// 415 (content type), 403 (the answer is "no answer": access or policy
// drop), 429 (the client's rate limit), each counted as a drop with its
// reason.
func (e *Encrypted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := e.s
	rt := s.rt.Load()
	if r.URL.Path != rt.Config.DoH.Path {
		s.obs.Dropped("doh_not_found")
		http.NotFound(w, r)
		return
	}
	var pkt []byte
	switch r.Method {
	case http.MethodGet:
		q := r.URL.Query().Get("dns")
		if q == "" {
			e.httpError(w, http.StatusBadRequest, "doh_bad_request", "missing dns parameter")
			return
		}
		// base64url without padding (RFC 8484 §4.1); padding is tolerated.
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(q, "="))
		if err != nil {
			e.httpError(w, http.StatusBadRequest, "doh_bad_request", "dns parameter is not base64url")
			return
		}
		pkt = b
	case http.MethodPost:
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != dohMediaType {
			e.httpError(w, http.StatusUnsupportedMediaType, "doh_media_type", "content type must be "+dohMediaType)
			return
		}
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDoHBody))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				e.httpError(w, http.StatusRequestEntityTooLarge, "doh_too_large", "body is larger than 65535 bytes")
				return
			}
			e.httpError(w, http.StatusBadRequest, "doh_bad_request", "reading the body failed")
			return
		}
		pkt = b
	default:
		w.Header().Set("Allow", "GET, POST")
		e.httpError(w, http.StatusMethodNotAllowed, "doh_bad_request", "method must be GET or POST")
		return
	}
	if len(pkt) < hdrLen || binary.BigEndian.Uint16(pkt[2:])&flagQR != 0 {
		e.httpError(w, http.StatusBadRequest, "doh_bad_request", "not a DNS query")
		return
	}
	client, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		e.httpError(w, http.StatusBadRequest, "doh_bad_request", "no client address")
		return
	}
	if !s.begin() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	// The query's snapshot: the current one once the query is read.
	rt = s.rt.Load()
	sw := streamWorkers.Get().(*worker)
	defer streamWorkers.Put(sw) // after the answer is written: it lives in sw
	out, limited := s.answerStream(sw, rt, pkt, client, DoH)
	s.qwg.Done()
	switch {
	case limited:
		http.Error(w, "rate limit", http.StatusTooManyRequests)
		return
	case out == nil:
		http.Error(w, "no answer", http.StatusForbidden)
		return
	}
	h := w.Header()
	h.Set("Content-Type", dohMediaType)
	h.Set("Content-Length", strconv.Itoa(len(out)))
	h.Set("Cache-Control", "max-age="+strconv.FormatUint(uint64(minTTL(out)), 10))
	_, _ = w.Write(out)
}

// httpError answers a bad DoH request with code, counted as a drop for
// reason.
func (e *Encrypted) httpError(w http.ResponseWriter, code int, reason, msg string) {
	e.s.obs.Dropped(reason)
	http.Error(w, msg, code)
}

// minTTL is the smallest TTL of the answer and authority records of the
// packed message msg (for a negative answer that is the SOA's, RFC 2308),
// 0 when there is none or msg does not parse.
func minTTL(msg []byte) uint32 {
	if len(msg) < hdrLen {
		return 0
	}
	qd := int(binary.BigEndian.Uint16(msg[4:]))
	n := int(binary.BigEndian.Uint16(msg[6:])) + int(binary.BigEndian.Uint16(msg[8:]))
	off := hdrLen
	for range qd {
		end, err := skipName(msg, off)
		if err != nil || end+4 > len(msg) {
			return 0
		}
		off = end + 4
	}
	ttl, found := uint32(0), false
	for range n {
		rr, err := readRR(msg, off)
		if err != nil {
			return 0
		}
		if t := binary.BigEndian.Uint32(msg[rr.ttlOff:]); rr.typ != typeOPT && (!found || t < ttl) {
			ttl, found = t, true
		}
		off = rr.end
	}
	return ttl
}

// paddingBlock is the block size responses are padded to (RFC 8467 §4.1,
// the Block-Length Padding strategy recommended for responses).
const paddingBlock = 468

// padReply pads the packed reply msg with an EDNS(0) Padding option (RFC
// 7830) to a multiple of paddingBlock bytes, so that the size of an
// encrypted answer says less about the name. Only a reply with an OPT
// record as its last record (the engine puts it there when the client sent
// EDNS) is padded; anything else is returned unchanged. msg is not
// written to (see appendPadding).
func padReply(msg []byte) []byte {
	rdOff, pad, ok := padding(msg)
	if !ok {
		return msg
	}
	out := make([]byte, len(msg), len(msg)+4+pad)
	copy(out, msg)
	return appendPadOption(out, rdOff, pad)
}

// appendPadding is padReply in place: it pads msg itself, appending to it
// (so msg's array is reused when it has room), and returns the padded
// message. The fast path pads its answers with it.
func appendPadding(msg []byte) []byte {
	rdOff, pad, ok := padding(msg)
	if !ok {
		return msg
	}
	return appendPadOption(msg, rdOff, pad)
}

// appendPadOption appends a Padding option of pad zero bytes to msg, whose
// last record is the OPT with RDATA at rdOff, and fixes the RDLENGTH.
func appendPadOption(msg []byte, rdOff, pad int) []byte {
	binary.BigEndian.PutUint16(msg[rdOff-2:], binary.BigEndian.Uint16(msg[rdOff-2:])+uint16(4+pad))
	msg = binary.BigEndian.AppendUint16(msg, 12) // option code: Padding
	msg = binary.BigEndian.AppendUint16(msg, uint16(pad))
	return append(msg, zeroPad[:pad]...)
}

// zeroPad is the padding's content.
var zeroPad [paddingBlock]byte

// padding finds where the reply msg is padded: the RDATA offset of its
// OPT record, which must be its last record, and the length of the
// padding that makes msg a multiple of paddingBlock bytes. ok is false when
// msg is not to be padded.
func padding(msg []byte) (rdOff, pad int, ok bool) {
	if len(msg) < hdrLen {
		return 0, 0, false
	}
	var total int
	for i := 4; i < hdrLen; i += 2 {
		total += int(binary.BigEndian.Uint16(msg[i:]))
	}
	qd := int(binary.BigEndian.Uint16(msg[4:]))
	ar := int(binary.BigEndian.Uint16(msg[10:]))
	if ar == 0 {
		return 0, 0, false
	}
	off := hdrLen
	for range qd {
		end, err := skipName(msg, off)
		if err != nil || end+4 > len(msg) {
			return 0, 0, false
		}
		off = end + 4
	}
	var last rrInfo
	for range total - qd {
		rr, err := readRR(msg, off)
		if err != nil {
			return 0, 0, false
		}
		last, off = rr, rr.end
	}
	if last.typ != typeOPT || last.end != len(msg) {
		return 0, 0, false
	}
	pad = (paddingBlock - (len(msg)+4)%paddingBlock) % paddingBlock
	if len(msg)+4+pad > maxDoHBody || last.rdLen+4+pad > 0xFFFF {
		return 0, 0, false
	}
	return last.rdOff, pad, true
}
