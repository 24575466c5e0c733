package policy

import (
	"testing"

	"github.com/jurisdns/jurisdns/spec"
)

// TestEnumNamesAreSpecs: every value of spec's enums converts to a policy
// value whose Spec and String give it back, "" converts to the default,
// and a value out of range has no spec name.
func TestEnumNamesAreSpecs(t *testing.T) {
	for _, v := range spec.Tiers {
		if got := tierOf(v); got.Spec() != v || got.String() != string(v) {
			t.Errorf("tier %q: got %d, Spec %q, String %q", v, got, got.Spec(), got.String())
		}
	}
	for _, v := range spec.Modes {
		if got := modeOf(v); got.Spec() != v || got.String() != string(v) {
			t.Errorf("mode %q: got %d, Spec %q, String %q", v, got, got.Spec(), got.String())
		}
	}
	for _, v := range spec.Actions {
		if got := actionOf(v); got.Spec() != v || got.String() != string(v) {
			t.Errorf("action %q: got %d, Spec %q, String %q", v, got, got.Spec(), got.String())
		}
	}
	for _, v := range spec.OnLoadFailures {
		if got := onLoadFailureOf(v); got.Spec() != v || got.String() != string(v) {
			t.Errorf("on_load_failure %q: got %d, Spec %q, String %q", v, got, got.Spec(), got.String())
		}
	}
	if tierOf("") != TierLocal || modeOf("") != ModeEnforce || actionOf("") != ActionNXDomain || onLoadFailureOf("") != LastKnownGood {
		t.Error(`"" does not convert to the defaults`)
	}
	if Tier(0).Spec() != "" || Tier(9).String() != "tier(9)" || Action(9).Spec() != "" || OnLoadFailure(9).String() != "on_load_failure(9)" {
		t.Error("values out of range have names")
	}
}
