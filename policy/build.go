package policy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jurisdns/jurisdns/blocklists"
	"github.com/jurisdns/jurisdns/spec"
)

// BuildOptions are the inputs of Build besides the configuration.
type BuildOptions struct {
	// BaseDir is the directory relative source paths resolve against,
	// usually the configuration file's directory. Empty means the current
	// directory.
	BaseDir string
	// Fetch gets the body of a URL source (the downloader: conditional
	// GET, on-disk last good copy, size cap) and hands it to accept, which
	// parses it and checks its guards (blocklists.Load), once per body: a
	// body accept refuses is not used (the downloader then offers its last
	// good copy, if any). A nil error means the last call of accept
	// returned no error; its list is the source's. Fetch is called from
	// several goroutines at once (URL sources are loaded in parallel, at
	// most maxParallelLoads at a time). Nil makes every URL source fail
	// with "url sources need the downloader".
	Fetch func(ctx context.Context, jurisdiction string, src spec.Source, accept func(body []byte, baseline int) (entries int, err error)) error
	// Transfer returns the zone file of a transfer source (an RPZ zone
	// pulled from its primaries, or its cached copy), read as it is parsed
	// and then closed, and the state of the transfer for
	// SourceInfo.Transfer. Nil makes every transfer source fail with
	// "transfer sources need the zone transfer client".
	Transfer func(ctx context.Context, jurisdiction string, src spec.Source) (io.ReadCloser, *TransferState, error)
	// Previous is the policy being replaced. A source that fails under
	// on_load_failure last_known_good keeps its rules from Previous, and
	// the max_shrink guard compares against it (a URL source: when its
	// downloader knows no last good copy).
	Previous *Policy
	// Logger receives load warnings and failures; nil discards them.
	Logger *slog.Logger
}

// Policy is the immutable result of Build. Its methods are safe for
// concurrent use.
type Policy struct {
	jurs  []*Jurisdiction
	byID  map[string]*Jurisdiction
	idx   *blocklists.Index
	rules ruleTable
	addrs map[uint32][]netip.Addr // RPZ local data, by tag
	// over holds the rules changed by deltas (ApplyDelta) since the index
	// was built; nil when there are none.
	over *overlay
	// accs are the rule digests of the jurisdictions, by index, for the
	// hash of a delta.
	accs []digest

	clients  []*ClientSet
	def      *ClientSet
	v4, v6   prefixTable
	defaults []string
	hash     string
}

const (
	// srcAllow marks rules that come from a jurisdiction's allow list.
	srcAllow = 0xFFFF
	// actionNone: no per-entry action override.
	actionNone blocklists.Action = 0xFE
	// maxJurisdictions keeps jurisdiction indexes in a uint16.
	maxJurisdictions = 0xFFFE
	// maxLineErrors bounds SourceInfo.Errors.
	maxLineErrors = 20
)

// jspec is a jurisdiction being built.
type jspec struct {
	j     *Jurisdiction
	key   string // where errors point: "shipped/x.yaml" or "jurisdictions[i]"
	srcs  []*sspec
	allow []aspec
	// ede is set when the EDE code was given (shipped file or override).
	edeSet bool
	// sdeKey is "structured_errors" when the contact came from there.
	sdeKey string
	// indexed is false for shipped jurisdictions that no client uses.
	indexed bool
	acc     digest
}

type sourceKind uint8

const (
	srcText sourceKind = iota // shipped entries or inline lines
	srcPath
	srcURL
	srcTransfer
)

// sspec is a source being loaded.
type sspec struct {
	key     string // "jurisdictions[2].sources[0]" or "shipped/x.yaml sources[0]"
	kind    sourceKind
	info    SourceInfo
	opts    blocklists.ParseOptions
	cfg     spec.Source
	text    []byte
	lineMap []int               // parse line-1 → reported line (shipped entries)
	actions []blocklists.Action // parse line-1 → action override (shipped entries)
	acc     digest
	// tags [first, end) in Policy.meta, for invalidation on failure.
	first, end int
}

type aspec struct {
	name   string
	origin string
	line   int
	key    string // error key path
}

type reuseKey struct{ jur, src uint16 }

type builder struct {
	ctx     context.Context
	opts    BuildOptions
	log     *slog.Logger
	errs    []error
	specs   []*jspec
	byID    map[string]*jspec
	userKey map[string]string // id → first user key path that set it
	rules   ruleTable
	addrs   map[uint32][]netip.Addr
	ib      *blocklists.IndexBuilder
	reuse   []reuseTarget
	ruleBuf []byte
	// sdeReported is set once structured_errors was found too long.
	sdeReported bool
	// localTimeout bounds opening and reading one local list file.
	localTimeout time.Duration
	// urls are the loads of the URL sources, running ahead of the build.
	urls *urlLoads
}

// reuseTarget is a failed source (js.srcs[src]) whose rules are copied
// from the previous policy's source old.
type reuseTarget struct {
	js  *jspec
	src int
	old reuseKey
}

func (b *builder) errorf(format string, args ...any) {
	b.errs = append(b.errs, fmt.Errorf(format, args...))
}

// Build resolves the jurisdictions (shipped ones merged with cfg's
// overrides and additions), loads every source, indexes all rules in one
// index and maps client subnets to jurisdictions. It reports every problem
// at once (errors.Join), each with its configuration key path, and
// file:line for list errors.
//
// cfg has passed spec.Validate: Build converts its values (tier, mode,
// action, format, ...) and does not check them again. What it reports is
// what only the merge and the load can tell: an override that leaves action
// ip without a sinkhole, a reference to no jurisdiction, a source that
// fails to load.
//
// Config.DefaultJurisdictions nil means ShippedDefaults(); an empty non-nil
// list means no jurisdiction for unmatched clients. A shipped jurisdiction
// that no client uses (and the configuration does not override) is loaded,
// for its entry count and hash, but not indexed.
//
// Bad lines do not fail the build: they are logged and kept in
// SourceInfo.Bad and SourceInfo.Errors. A source that cannot be read,
// that the parser rejects (too many bad lines) or that fails a guard
// (sha256, allow_empty, min_entries, max_shrink, must_contain: checked by
// the list loader, blocklists.Load, once per body) is handled by its
// jurisdiction's on_load_failure.
func Build(ctx context.Context, cfg *spec.Config, opts BuildOptions) (*Policy, error) {
	if cfg == nil {
		cfg = &spec.Config{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	files, err := loadShipped()
	if err != nil {
		return nil, fmt.Errorf("shipped jurisdictions: %w", err)
	}
	b := &builder{
		ctx:     ctx,
		opts:    opts,
		log:     log,
		byID:    map[string]*jspec{},
		userKey: map[string]string{},
		addrs:   map[uint32][]netip.Addr{},

		localTimeout: cfg.Lists.Timeout,
	}
	for _, f := range files {
		b.addShipped(f)
	}
	for i := range cfg.Jurisdictions {
		b.addUser(i, &cfg.Jurisdictions[i])
	}
	if len(b.specs) > maxJurisdictions {
		return nil, fmt.Errorf("too many jurisdictions: %d (max %d)", len(b.specs), maxJurisdictions)
	}
	for _, js := range b.specs {
		j := js.j
		if j.Contact == "" && j.Organisation == "" && cfg.StructuredErrors.Contact != "" {
			j.Contact, j.Organisation = cfg.StructuredErrors.Contact, cfg.StructuredErrors.Organisation
			js.sdeKey = "structured_errors"
		}
		j.LinkTitles = j.linkTitles()
		b.check(js)
	}

	p := &Policy{byID: map[string]*Jurisdiction{}}
	for _, js := range b.specs {
		p.jurs = append(p.jurs, js.j)
		p.byID[js.j.ID] = js.j
	}
	b.resolveClients(cfg, p)
	for _, js := range b.specs {
		// A shipped jurisdiction that nobody uses is loaded for `lists`
		// (entries, hash) but kept out of the index: fewer hits per query.
		js.indexed = js.j.InUse || !js.j.Shipped || js.j.Overridden
	}

	hint := 0
	if opts.Previous != nil {
		hint = opts.Previous.rules.len()
	}
	b.ib = blocklists.NewIndexBuilder(hint)
	b.urls = b.startURLLoads()
	defer b.urls.stop()
	for _, js := range b.specs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for si, s := range js.srcs {
			b.loadSource(js, si, s)
		}
		for ai := range js.allow {
			b.addAllow(js, ai)
		}
	}
	b.reusePrevious()
	if len(b.errs) > 0 {
		return nil, errors.Join(b.errs...)
	}
	for _, cs := range append(slices.Clip(p.clients), p.def) {
		for _, j := range cs.Jurisdictions {
			if !j.Loaded && j.OnLoadFailure == FailClosed {
				cs.failClosed = append(cs.failClosed, j)
			}
		}
	}

	p.idx = b.ib.Build()
	p.rules = b.rules
	p.rules.clip()
	p.addrs = b.addrs
	for _, js := range b.specs {
		j := js.j
		j.Sources = make([]SourceInfo, len(js.srcs))
		j.Entries = len(j.Allow)
		for i, s := range js.srcs {
			j.Sources[i] = s.info
			j.Entries += s.info.Entries
			js.acc.addDigest(&s.acc)
		}
		j.Hash = jurisdictionHash(j, &js.acc)
	}
	p.accs = make([]digest, len(b.specs))
	for i, js := range b.specs {
		p.accs[i] = js.acc
	}
	p.hash = policyHash(p)
	return p, nil
}

// addShipped turns a shipped file into a jurisdiction spec.
func (b *builder) addShipped(f *shippedFile) {
	j := &Jurisdiction{
		Description: Description{
			ID:        f.ID,
			Notes:     strings.TrimSpace(f.Notes),
			LeavesOut: f.LeavesOut,
		},
		Shipped: true,
		Default: f.Default,
		Loaded:  true,
		TTL:     DefaultTTL,
		Tier:    TierLocal,
		cites:   map[citeKey]int{},
	}
	for _, in := range f.Instruments {
		x := Instrument{Name: in.Name, Issuer: in.Issuer, Scope: strings.TrimSpace(in.Scope)}
		// parseShippedFile checked the dates.
		if in.Date != "" {
			x.Date, _ = parseDate(in.Date)
		}
		if in.Repealed != "" {
			x.Repealed, _ = parseDate(in.Repealed)
		}
		for _, l := range in.Links {
			x.Links = append(x.Links, Link{URL: l.URL, Title: l.Title})
			j.Links = append(j.Links, l.URL)
		}
		j.Instruments = append(j.Instruments, x)
	}
	for _, l := range f.NameSources {
		j.NameSources = append(j.NameSources, Link{URL: l.URL, Title: l.Title})
		j.Links = append(j.Links, l.URL)
	}
	if len(j.Instruments) > 0 {
		j.Instrument = j.Instruments[0].Name
	}
	js := &jspec{j: j, key: f.file}
	b.setAttrs(js, &f.JurisdictionAttrs)
	for i, src := range f.Sources {
		key := fmt.Sprintf("%s sources[%d]", f.file, i)
		s := &sspec{key: key, kind: srcText}
		s.info = SourceInfo{SourceState: SourceState{Name: src.Name, Origin: "shipped"}}
		s.setFormat(src.Format, src.Match)
		s.opts.Source = f.file
		var text bytes.Buffer
		for _, e := range src.Entries {
			if e.Unconfirmed {
				s.info.Skipped++
				continue
			}
			text.WriteString(strings.TrimSpace(e.Rule))
			text.WriteByte('\n')
			s.lineMap = append(s.lineMap, e.Line)
			j.cites[citeKey{uint16(i), e.Line}] = f.instrOf[e.Cite]
			s.actions = append(s.actions, entryAction(e.Action))
		}
		s.text = text.Bytes()
		js.srcs = append(js.srcs, s)
	}
	for k, e := range f.Allow {
		// Allow rules carry 1 + their index in Jurisdiction.Allow as line.
		j.cites[citeKey{srcAllow, k + 1}] = f.instrOf[e.Cite]
		js.allow = append(js.allow, aspec{name: e.Rule, origin: f.file, line: e.Line, key: fmt.Sprintf("%s:%d", f.file, e.Line)})
	}
	b.appendSpec(js)
}

// appendSpec adds a jurisdiction; its index is its position.
func (b *builder) appendSpec(js *jspec) {
	js.j.idx = len(b.specs)
	b.specs = append(b.specs, js)
	b.byID[js.j.ID] = js
}

// entryAction is the rule action of a shipped entry's action (decoded by
// its UnmarshalText); "" is actionNone, the jurisdiction's answer.
func entryAction(a spec.EntryAction) blocklists.Action {
	switch a {
	case spec.EntryNXDomain:
		return blocklists.NXDomain
	case spec.EntryNoData:
		return blocklists.NoData
	case spec.EntryDrop:
		return blocklists.Drop
	case spec.EntryAllow, spec.EntryPassthru:
		return blocklists.Allow
	}
	return actionNone
}

// setAttrs applies the attributes that are set ("", nil and 0 are unset).
func (b *builder) setAttrs(js *jspec, a *spec.JurisdictionAttrs) {
	// Every value was checked where it was read (spec.Validate for the
	// configuration, ShippedJurisdiction.Validate and the enums'
	// UnmarshalText for the shipped files, by the same rules): set ones are
	// converted, not checked again.
	j := js.j
	if a.Title != "" {
		j.Title = a.Title
	}
	if a.Authority != "" {
		j.Authority = a.Authority
	}
	if a.Effective != "" {
		j.Effective, _ = parseDate(a.Effective)
	}
	if a.Expires != "" {
		j.Expires, _ = parseDate(a.Expires)
	}
	if a.Tier != "" {
		j.Tier = tierOf(a.Tier)
	}
	if a.Mode != "" {
		j.Mode = modeOf(a.Mode)
	}
	if a.Action != "" {
		j.Action = actionOf(a.Action)
	}
	if a.Sinkhole != nil {
		j.Sinkhole = nil
		for _, s := range a.Sinkhole {
			if ad, err := netip.ParseAddr(s); err == nil {
				j.Sinkhole = append(j.Sinkhole, ad.Unmap())
			}
		}
	}
	if a.EDE != nil {
		j.EDE = uint16(*a.EDE)
		js.edeSet = true
	}
	if a.TTL > 0 {
		j.TTL = a.TTL
	}
	if a.OnLoadFailure != "" {
		j.OnLoadFailure = onLoadFailureOf(a.OnLoadFailure)
	}
}

// addUser applies cfg.Jurisdictions[i]: an override of a shipped (or
// earlier) jurisdiction with the same id, or a new jurisdiction.
func (b *builder) addUser(i int, u *spec.Jurisdiction) {
	// spec.Validate checked the id (spec.CheckID, the rule of the shipped
	// ids too) and that no other entry uses it.
	key := fmt.Sprintf("jurisdictions[%d]", i)
	id := u.ID
	b.userKey[id] = key
	js, ok := b.byID[id]
	if ok {
		js.j.Overridden = true
	} else {
		j := &Jurisdiction{Description: Description{ID: id, Title: id}, Tier: TierLocal, TTL: DefaultTTL, Loaded: true}
		js = &jspec{j: j, key: key}
		b.appendSpec(js)
	}
	j := js.j
	// A configured instrument or links replace the shipped provenance as a
	// whole: the EDE text then names the configured instrument.
	if u.Instrument != "" {
		j.Instrument = u.Instrument
		j.Instruments, j.NameSources = nil, nil
	}
	if u.Links != nil {
		j.Links = u.Links
		j.Instruments, j.NameSources = nil, nil
	}
	if u.Contact != "" {
		j.Contact = u.Contact
	}
	if u.Organisation != "" {
		j.Organisation = u.Organisation
	}
	b.setAttrs(js, &u.JurisdictionAttrs)
	for k := range u.Sources {
		b.addUserSource(js, fmt.Sprintf("%s.sources[%d]", key, k), &u.Sources[k])
	}
	for k, a := range u.Allow {
		js.allow = append(js.allow, aspec{
			name: a, origin: fmt.Sprintf("%s.allow[%d]", key, k), line: k + 1,
			key: fmt.Sprintf("%s.allow[%d]", key, k),
		})
	}
}

func (b *builder) addUserSource(js *jspec, key string, src *spec.Source) {
	s := &sspec{key: key, cfg: *src}
	// spec.Validate made it exactly one of path, url, inline and transfer.
	switch {
	case src.Path != "":
		s.kind = srcPath
		p := src.Path
		if !filepath.IsAbs(p) && b.opts.BaseDir != "" {
			p = filepath.Join(b.opts.BaseDir, p)
		}
		s.info.Origin = p
		s.info.key = p
		s.info.Name = filepath.Base(src.Path)
	case src.URL != "":
		s.kind = srcURL
		// Shown everywhere (status, readyz, logs, EDE text, `lists`):
		// never with the URL's credentials or query string.
		s.info.Origin = spec.RedactURL(src.URL)
		s.info.key = src.URL
		s.info.Name = s.info.Origin
	case src.Transfer != nil:
		s.kind = srcTransfer
		s.info.Origin = TransferOrigin(src.Transfer.Zone)
		s.info.Name = src.Transfer.Zone
	default:
		s.kind = srcText
		s.info.Origin = "inline"
		s.info.Name = "inline"
		s.text = []byte(strings.Join(src.Inline, "\n") + "\n")
	}
	if src.Name != "" {
		s.info.Name = src.Name
	}
	format := src.Format
	if s.kind == srcTransfer {
		format = spec.FormatRPZ
	}
	s.setFormat(format, src.Match)
	if s.kind == srcTransfer {
		s.opts.Origin = src.Transfer.Zone
	}
	s.opts.Source = s.info.Origin
	if s.kind == srcText {
		s.opts.Source = key + ".inline"
	}
	js.srcs = append(js.srcs, s)
}

// setFormat sets the format and match of a source (checked where they
// were decoded; "" is domains and suffix).
func (s *sspec) setFormat(format spec.Format, match spec.Match) {
	s.opts = SourceParseOptions(format, match)
	s.info.Format = s.opts.Format
	s.info.Match = string(spec.MatchSuffix)
	if s.opts.Match == blocklists.Exact {
		s.info.Match = string(spec.MatchExact)
	}
}

// SourceParseOptions are the parse options of a list source of the
// configuration: its format (blocklists.Format holds the names of
// spec.Format) and what a plain entry blocks. The policy and the
// downloader's guards (app) parse a list with the same options.
func SourceParseOptions(format spec.Format, match spec.Match) blocklists.ParseOptions {
	o := blocklists.ParseOptions{Format: format, Match: blocklists.Suffix}
	if format == "" {
		o.Format = blocklists.FormatDomains
	}
	if match == spec.MatchExact {
		o.Match = blocklists.Exact
	}
	return o
}

// check validates a merged jurisdiction and fills the defaults that
// depend on other fields.
func (b *builder) check(js *jspec) {
	j := js.j
	if !js.edeSet {
		j.EDE = 15 // Blocked: the operator's own policy
		if j.Tier == TierMandated {
			j.EDE = 16 // Censored: an external legal requirement
		}
	}
	if j.Contact != "" {
		j.sde = structuredPrefix(j)
		// Reported once for structured_errors, not once per jurisdiction.
		if len(j.sde) > maxSDEPrefix && (js.sdeKey == "" || !b.sdeReported) {
			key := js.sdeKey
			if key == "" {
				key = b.keyOf(js)
			} else {
				b.sdeReported = true
			}
			b.errorf("%s: contact and organisation take %d bytes of the %d of the EDE text (at most %d)", key, len(j.sde), maxEDEText, maxSDEPrefix)
		}
	} else if j.Organisation != "" {
		b.errorf("%s.organisation: needs a contact (here or structured_errors.contact): the structured DNS error JSON requires one", b.keyOf(js))
	}
	if j.Action == ActionIP && len(j.Sinkhole) == 0 {
		b.errorf("%s: action ip needs sinkhole addresses", b.keyOf(js))
	}
	if !j.Effective.IsZero() && !j.Expires.IsZero() && !j.Effective.Before(j.Expires) {
		b.errorf("%s: effective %s is not before expires %s", b.keyOf(js), FormatDate(j.Effective), FormatDate(j.Expires))
	}
}

// keyOf is the key path of the user entry that last touched js, or its
// shipped file.
func (b *builder) keyOf(js *jspec) string {
	if k, ok := b.userKey[js.j.ID]; ok {
		return k
	}
	return js.key
}

// loadSource parses one source into the index builder and applies the
// jurisdiction's on_load_failure when it fails.
func (b *builder) loadSource(js *jspec, si int, s *sspec) {
	j := js.j
	s.first = b.rules.len()
	err := b.parseSource(js, si, s)
	s.end = b.rules.len()
	if err == nil {
		return
	}
	b.rules.kill(s.first, s.end)
	for t := s.first; t < s.end && len(b.addrs) > 0; t++ {
		delete(b.addrs, uint32(t))
	}
	s.info.Entries = 0
	s.acc = digest{}
	s.info.Err = err.Error()
	msg := fmt.Sprintf("%s: %v", s.key, err)
	switch j.OnLoadFailure {
	case LastKnownGood:
		if b.planReuse(js, si, s) {
			s.info.Stale = true
			if j.LoadError == "" {
				j.LoadError = msg + " (kept last known good)"
			}
			b.log.Warn("list source failed, keeping its last known good rules",
				"jurisdiction", j.ID, "source", s.info.Name, "error", err)
			return
		}
		b.errs = append(b.errs, fmt.Errorf("%s (on_load_failure last_known_good: no previous copy)", msg))
	case FailClosed:
		j.Loaded = false
		if j.LoadError == "" {
			j.LoadError = msg
		}
		b.log.Error("list source failed: the jurisdiction's clients get SERVFAIL (on_load_failure fail_closed)",
			"jurisdiction", j.ID, "source", s.info.Name, "error", err)
	case FailOpen:
		j.Loaded = false
		if j.LoadError == "" {
			j.LoadError = msg
		}
		b.log.Error("LIST SOURCE FAILED: ITS RULES ARE NOT ENFORCED (on_load_failure fail_open)",
			"jurisdiction", j.ID, "source", s.info.Name, "error", err)
	}
}

// ErrNotChecked, returned by BuildOptions.Fetch, says the source was
// deliberately not read (validate --offline without a last good copy): it
// contributes no rules and its guards are not applied.
var ErrNotChecked = errors.New("source not checked")

// loadList is blocklists.LoadEach; a test counts the parses through it.
var loadList = blocklists.LoadEach

// guards are the guards of a source, as configured. An inline or shipped
// list may be empty.
func (s *sspec) guards() blocklists.Guards {
	return blocklists.Guards{
		SHA256:      s.cfg.SHA256,
		AllowEmpty:  s.cfg.AllowEmpty || s.kind == srcText,
		MinEntries:  s.cfg.MinEntries,
		MaxShrink:   s.cfg.MaxShrink,
		MustContain: s.cfg.MustContain,
	}
}

// parseSource loads one source through the list loader (blocklists.Load:
// one parse, every guard checked once) and adds its rules. A URL source
// was loaded ahead (startURLLoads).
func (b *builder) parseSource(js *jspec, si int, s *sspec) error {
	var l *blocklists.Loaded
	var err error
	n := 0
	add := func(rule blocklists.Rule) { b.addRule(js, si, s, rule); n++ }
	if s.kind == srcURL {
		l, err = b.urls.take(s)
		if l != nil {
			l.Rules.Each(add)
		}
	} else {
		// Into the index as the parser reads them. The rules of a local
		// source that fails are indexed too, and killed by loadSource:
		// Explain shows them as "failed".
		l, err = b.loadRules(js, s, add)
	}
	s.info.Entries = n
	if l != nil {
		s.info.Bad = l.Stats.Bad
		s.info.Skipped += l.Stats.Skipped
		s.info.Errors = s.lineErrors(l.Stats.Errors)
		s.info.Hash = l.SHA256
	}
	if err != nil {
		var rej *blocklists.RejectedError
		if errors.As(err, &rej) {
			return withLineErrors(err, s.info.Errors)
		}
		return err
	}
	if s.info.Bad > 0 {
		b.log.Warn("list source has bad lines", "jurisdiction", js.j.ID, "source", s.info.Name,
			"bad", s.info.Bad, "first", s.info.Errors[0].Error())
	}
	return nil
}

// maxParallelLoads bounds the URL sources loaded at a time, downloads and
// their loaded rules waiting for the build: a reload with several silent
// list servers takes about one lists.deadline per maxParallelLoads of them,
// not one per server.
const maxParallelLoads = 4

// urlLoads loads the URL sources of a build in parallel, ahead of the
// build, which takes their results in source order: at most
// maxParallelLoads are downloading or waiting to be taken.
type urlLoads struct {
	results map[*sspec]chan loadResult
	slots   chan struct{} // one per load started and not yet taken
	done    chan struct{} // closed by stop: start no more
	wg      sync.WaitGroup
}

type loadResult struct {
	l   *blocklists.Loaded
	err error
}

// startURLLoads starts loading the URL sources, in source order.
func (b *builder) startURLLoads() *urlLoads {
	u := &urlLoads{results: map[*sspec]chan loadResult{}, slots: make(chan struct{}, maxParallelLoads), done: make(chan struct{})}
	type job struct {
		js *jspec
		s  *sspec
	}
	var jobs []job
	for _, js := range b.specs {
		for _, s := range js.srcs {
			if s.kind == srcURL {
				u.results[s] = make(chan loadResult, 1)
				jobs = append(jobs, job{js, s})
			}
		}
	}
	if len(jobs) == 0 {
		return u
	}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for _, jb := range jobs {
			select {
			case u.slots <- struct{}{}:
			case <-u.done:
				return
			}
			if err := b.ctx.Err(); err != nil { // the build is being abandoned
				u.results[jb.s] <- loadResult{nil, err}
				continue
			}
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				l, err := b.loadRules(jb.js, jb.s, nil)
				u.results[jb.s] <- loadResult{l, err}
			}()
		}
	}()
	return u
}

// take waits for the load of s and frees its slot.
func (u *urlLoads) take(s *sspec) (*blocklists.Loaded, error) {
	r := <-u.results[s]
	<-u.slots
	return r.l, r.err
}

// stop starts no more loads and waits for those under way (the build's
// context ends them when it is cancelled): none outlives Build.
func (u *urlLoads) stop() {
	close(u.done)
	u.wg.Wait()
}

// loadRules reads a source and has the list loader parse and guard it,
// each rule passed to each as it is read, or, with a nil each, kept in the
// Loaded's Rules (a URL source, loaded ahead of the build). A nil Loaded
// with a nil error is a URL source deliberately not read (ErrNotChecked). A
// local source's Loaded comes with its error, if it was read; a URL
// source's only when it was accepted.
func (b *builder) loadRules(js *jspec, s *sspec, each func(blocklists.Rule)) (*blocklists.Loaded, error) {
	g := s.guards()
	load := func(r io.Reader, baseline int) (*blocklists.Loaded, error) {
		if each != nil {
			return loadList(r, s.opts, g, baseline, each)
		}
		rs := &blocklists.Rules{}
		l, err := loadList(r, s.opts, g, baseline, rs.Add)
		if l != nil {
			l.Rules = rs
		}
		return l, err
	}
	// The baseline of max_shrink: the entries of the source in the policy
	// being replaced; a URL source's downloader knows its last good copy
	// better (also across restarts), and that takes precedence.
	baseline := blocklists.NoBaseline
	if prev := b.previousSource(js.j.ID, &s.info); prev != nil {
		baseline = prev.Entries
	}
	switch s.kind {
	case srcText:
		return load(bytes.NewReader(s.text), baseline)
	case srcPath:
		data, err := readLocal(b.ctx, s.info.Origin, b.localTimeout)
		if err != nil {
			return nil, err
		}
		return load(bytes.NewReader(data), baseline)
	case srcTransfer:
		if b.opts.Transfer == nil {
			return nil, errors.New("transfer sources need the zone transfer client")
		}
		rc, st, err := b.opts.Transfer(b.ctx, js.j.ID, s.cfg)
		s.info.Transfer = st
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return load(rc, baseline)
	}
	if b.opts.Fetch == nil {
		return nil, errors.New("url sources need the downloader")
	}
	var last *blocklists.Loaded
	err := b.opts.Fetch(b.ctx, js.j.ID, s.cfg, func(body []byte, copyBaseline int) (int, error) {
		if copyBaseline < 0 {
			copyBaseline = baseline
		}
		l, err := load(bytes.NewReader(body), copyBaseline)
		last = l
		if err != nil {
			return 0, err
		}
		return l.Stats.Rules, nil
	})
	if errors.Is(err, ErrNotChecked) {
		return nil, nil
	}
	if err != nil {
		// The downloader's error names the URL and the guard or the
		// first bad line; no body of the source is used.
		return nil, err
	}
	return last, nil
}

// addRule adds one rule of a source to the index, with the per-entry
// actions and line numbers of a shipped source, and to the source's
// digest.
func (b *builder) addRule(js *jspec, si int, s *sspec, rule blocklists.Rule) {
	act := rule.Action
	line := rule.Line
	if k := line - 1; k >= 0 && k < len(s.actions) && s.actions[k] != actionNone {
		act = s.actions[k]
	}
	if k := line - 1; k >= 0 && k < len(s.lineMap) {
		line = s.lineMap[k]
	}
	var addrs []netip.Addr
	if act == blocklists.LocalData {
		addrs = rule.Addrs
	}
	if js.indexed {
		tag := b.rules.push(uint16(js.j.idx), uint16(si), line, act)
		if len(addrs) > 0 {
			b.addrs[tag] = addrs
		}
		b.ib.Add(rule.Name, rule.Kind, tag)
	}
	s.acc.add(b.ruleDigest(rule.Name, rule.Kind, act, addrs))
}

// lineErrors keeps the first bad lines, with shipped line numbers mapped to
// the entry's line in its file.
func (s *sspec) lineErrors(in []blocklists.LineError) []blocklists.LineError {
	if len(in) > maxLineErrors {
		in = in[:maxLineErrors]
	}
	out := make([]blocklists.LineError, len(in))
	copy(out, in)
	for i := range out {
		if k := out[i].Line - 1; k >= 0 && k < len(s.lineMap) {
			out[i].Line = s.lineMap[k]
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// withLineErrors appends the first bad lines to a parse error that does not
// already name them.
func withLineErrors(err error, lines []blocklists.LineError) error {
	if len(lines) == 0 {
		return err
	}
	first := lines[0].Error()
	if strings.Contains(err.Error(), first) {
		return err
	}
	var sb strings.Builder
	for i, l := range lines {
		if i == 3 {
			fmt.Fprintf(&sb, "; … %d more", len(lines)-i)
			break
		}
		if i > 0 {
			sb.WriteString("; ")
		}
		sb.WriteString(l.Error())
	}
	return fmt.Errorf("%w (%s)", err, sb.String())
}

// previousSource finds the source with the same name and origin in the
// same jurisdiction of the previous policy.
func (b *builder) previousSource(id string, info *SourceInfo) *SourceInfo {
	_, k := b.previousSourceIndex(id, info)
	if k < 0 {
		return nil
	}
	return &b.opts.Previous.byID[id].Sources[k]
}

func (b *builder) previousSourceIndex(id string, info *SourceInfo) (*Jurisdiction, int) {
	prev := b.opts.Previous
	if prev == nil {
		return nil, -1
	}
	oj := prev.byID[id]
	if oj == nil {
		return nil, -1
	}
	for k := range oj.Sources {
		if oj.Sources[k].Name == info.Name && oj.Sources[k].key == info.key && oj.Sources[k].Origin == info.Origin {
			return oj, k
		}
	}
	return nil, -1
}

// planReuse arranges for the previous policy's rules of the failed source
// to be copied; it reports whether there is such a copy.
func (b *builder) planReuse(js *jspec, si int, s *sspec) bool {
	oj, k := b.previousSourceIndex(js.j.ID, &s.info)
	if oj == nil {
		return false
	}
	b.reuse = append(b.reuse, reuseTarget{js: js, src: si, old: reuseKey{jur: uint16(oj.idx), src: uint16(k)}})
	return true
}

// reusePrevious copies the last known good rules of failed sources from
// the previous policy: one pass over its index per failed source, so that
// each source's rules keep consecutive tags.
func (b *builder) reusePrevious() {
	prev := b.opts.Previous
	for _, r := range b.reuse {
		s := r.js.srcs[r.src]
		jur, src := uint16(r.js.j.idx), uint16(r.src)
		prev.each(func(name string, kind blocklists.Kind, tag uint32, m ruleMeta) bool {
			if m.dead || m.jur != r.old.jur || m.src != r.old.src {
				return true
			}
			nt := b.rules.push(jur, src, int(m.line), m.action)
			var addrs []netip.Addr
			if a := prev.addrsOf(tag); a != nil {
				addrs = a
				b.addrs[nt] = a
			}
			b.ib.Add(name, kind, nt)
			s.acc.add(b.ruleDigest(name, kind, m.action, addrs))
			s.info.Entries++
			return true
		})
	}
}

// addAllow indexes one allow entry of a jurisdiction.
func (b *builder) addAllow(js *jspec, ai int) {
	a := js.allow[ai]
	name := strings.TrimSpace(a.name)
	kind := blocklists.Suffix
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		name, kind = rest, blocklists.Below
	}
	c, err := blocklists.Canonical(name)
	if err != nil {
		b.errorf("%s: bad allow entry %q: %v", a.key, a.name, err)
		return
	}
	j := js.j
	if js.indexed {
		// Allow rules carry 1 + their index in Jurisdiction.Allow as line.
		tag := b.rules.push(uint16(j.idx), srcAllow, len(j.Allow)+1, blocklists.Allow)
		b.ib.Add(c, kind, tag)
	}
	js.acc.add(b.ruleDigest(c, kind, blocklists.Allow, nil))
	j.Allow = append(j.Allow, AllowEntry{Name: a.name, Origin: a.origin, Line: a.line})
}
