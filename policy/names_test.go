package policy

import (
	"testing"

	"github.com/jurisdns/jurisdns/spec"
)

// named is a policy enum with spec's names.
type named[S ~string] interface {
	Spec() S
	String() string
}

// roundTrip checks that every value of one of spec's enums converts to a
// policy value whose Spec and String give it back.
func roundTrip[S ~string, P named[S]](t *testing.T, key string, values []S, of func(S) P) {
	t.Helper()
	for _, v := range values {
		if got := of(v); got.Spec() != v || got.String() != string(v) {
			t.Errorf("%s %q: Spec %q, String %q", key, v, got.Spec(), got.String())
		}
	}
}

// TestEnumNamesAreSpecs: policy's enums are named by spec's values; ""
// converts to the default, and a value out of range has no spec name.
func TestEnumNamesAreSpecs(t *testing.T) {
	roundTrip(t, "tier", spec.Tiers, tierOf)
	roundTrip(t, "mode", spec.Modes, modeOf)
	roundTrip(t, "action", spec.Actions, actionOf)
	roundTrip(t, "on_load_failure", spec.OnLoadFailures, onLoadFailureOf)
	if tierOf("") != TierLocal || modeOf("") != ModeEnforce || actionOf("") != ActionNXDomain || onLoadFailureOf("") != LastKnownGood {
		t.Error(`"" does not convert to the defaults`)
	}
	if Tier(0).Spec() != "" || Tier(9).String() != "tier(9)" || Action(9).Spec() != "" || OnLoadFailure(9).String() != "on_load_failure(9)" {
		t.Error("values out of range have names")
	}
}
