package policy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/jurisdns/jurisdns/config"
)

// deltaConfig has one jurisdiction with a transfer source of rpz.test. and
// an allow entry, and one other jurisdiction, for the default clients.
func deltaConfig() *config.Config {
	return &config.Config{
		DefaultJurisdictions: []string{"feed", "other"},
		Jurisdictions: []config.Jurisdiction{
			{
				JurisdictionAttrs: config.JurisdictionAttrs{ID: "feed"},
				Allow:             []string{"ok.example"},
				Sources: []config.Source{{Name: "rpz",
					Transfer: &config.Transfer{Zone: "rpz.test.", Primaries: []string{"127.0.0.1:53"}}}},
			},
			jd("other", "", []string{"other.example"}),
		},
	}
}

func zoneText(records ...string) []byte {
	return []byte("$ORIGIN rpz.test.\n@ 60 IN SOA localhost. admin 1 1 1 1 1\n" + strings.Join(records, "\n") + "\n")
}

func buildWith(t *testing.T, text []byte, prev *Policy) *Policy {
	t.Helper()
	p, err := Build(context.Background(), deltaConfig(), BuildOptions{Previous: prev,
		Transfer: func(context.Context, string, config.Source) (io.ReadCloser, *TransferState, error) {
			return io.NopCloser(bytes.NewReader(text)), &TransferState{Zone: "rpz.test.", Serial: 1}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestApplyDelta: a delta gives the answers and the hash of a rebuild
// with the same final zone, and leaves the policy it started from alone.
func TestApplyDelta(t *testing.T) {
	v1 := []string{
		"a.example CNAME .",
		"*.b.example CNAME .",
		"ok.example CNAME .",
		"sink.example A 192.0.2.1",
		"32.1.2.0.192.rpz-ip CNAME .",
		"keep.example CNAME *.",
	}
	base := buildWith(t, zoneText(v1...), nil)
	if base.Lookup("feed").Sources[0].Skipped != 1 {
		t.Fatalf("skipped %d, want the rpz-ip trigger", base.Lookup("feed").Sources[0].Skipped)
	}
	now := time.Now()
	// Two deltas: a removed, c added, sink's address changed; then
	// *.b removed, d added as drop, the rpz-ip trigger removed.
	p1, res, err := base.ApplyDelta("feed", "rpz",
		zoneText("a.example CNAME .", "sink.example A 192.0.2.1"),
		zoneText("c.example CNAME .", "sink.example A 192.0.2.2"), &TransferState{Zone: "rpz.test.", Serial: 2})
	if err != nil || res.Added != 2 || res.Removed != 2 {
		t.Fatalf("delta 1: %+v %v", res, err)
	}
	p2, _, err := p1.ApplyDelta("feed", "rpz",
		zoneText("*.b.example CNAME .", "32.1.2.0.192.rpz-ip CNAME ."),
		zoneText("d.example CNAME rpz-drop."), &TransferState{Zone: "rpz.test.", Serial: 3})
	if err != nil {
		t.Fatal(err)
	}
	final := buildWith(t, zoneText("c.example CNAME .", "ok.example CNAME .", "sink.example A 192.0.2.2",
		"keep.example CNAME *.", "d.example CNAME rpz-drop."), nil)
	if p2.Hash() != final.Hash() {
		t.Errorf("hash after the deltas %s, rebuilt %s", p2.Hash(), final.Hash())
	}
	if got, want := p2.Entries("feed"), final.Entries("feed"); got != want {
		t.Errorf("entries %d, rebuilt %d", got, want)
	}
	if s := p2.Lookup("feed").Sources[0]; s.Skipped != 0 || s.Transfer.Serial != 3 {
		t.Errorf("source after the deltas: skipped %d serial %d", s.Skipped, s.Transfer.Serial)
	}
	for _, q := range []string{"a.example", "x.b.example", "c.example", "sink.example", "d.example", "keep.example",
		"ok.example", "other.example", "none.example"} {
		got, want := p2.Match(q, nil, now), final.Match(q, nil, now)
		if got.Decision != want.Decision || got.Action != want.Action || fmt.Sprint(got.Addrs) != fmt.Sprint(want.Addrs) {
			t.Errorf("%s: delta %v/%v/%v, rebuilt %v/%v/%v", q, got.Decision, got.Action, got.Addrs, want.Decision, want.Action, want.Addrs)
		}
	}
	if v := p2.Match("sink.example", nil, now); len(v.Addrs) != 1 || v.Addrs[0] != netip.MustParseAddr("192.0.2.2") {
		t.Errorf("sink.example: %v", v.Addrs)
	}
	// The starting policy still answers as before.
	if v := base.Match("a.example", nil, now); v.Decision != DecisionBlock {
		t.Errorf("base changed: a.example %v", v.Decision)
	}
	if v := base.Match("c.example", nil, now); v.Decision != DecisionNone {
		t.Errorf("base changed: c.example %v", v.Decision)
	}
	// The client sets point at the new jurisdiction.
	if j := p2.DefaultClientSet().Jurisdictions[0]; j != p2.Lookup("feed") {
		t.Error("default client set still points at the old jurisdiction")
	}
	// A rebuild from a delta policy keeps the rules (last known good).
	if d := Diff(final, p2); len(d) != 0 {
		t.Errorf("diff between the delta and the rebuilt policy: %v", d)
	}
	if _, _, err := base.ApplyDelta("nope", "rpz", nil, nil, nil); err == nil {
		t.Error("delta of an unknown jurisdiction")
	}
}

func TestApplyDeltaTooLarge(t *testing.T) {
	base := buildWith(t, zoneText("a.example CNAME ."), nil)
	var recs []string
	for i := range maxOverlay + 1 {
		recs = append(recs, fmt.Sprintf("n%d.example CNAME .", i))
	}
	if _, _, err := base.ApplyDelta("feed", "rpz", zoneText(), zoneText(recs...), nil); !errors.Is(err, ErrRebuild) {
		t.Errorf("delta of %d rules: %v, want ErrRebuild", len(recs), err)
	}
}
