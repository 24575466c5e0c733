package app

import (
	"testing"

	"github.com/jurisdns/jurisdns/policy"
	"github.com/jurisdns/jurisdns/resolver"
	"github.com/jurisdns/jurisdns/status"
)

type countingAuditor struct{ n int }

func (c *countingAuditor) PolicyEvent(*policy.Event) { c.n++ }

type countingLogger struct{ n int }

func (c *countingLogger) Query(*resolver.QueryEvent) { c.n++ }

// valueAuditor is a non-pointer sink: present must not take it for nil.
type valueAuditor struct{ n *int }

func (v valueAuditor) PolicyEvent(*policy.Event) { *v.n++ }

// TestFanOut: the sinks that are off (a nil interface, a nil pointer, the
// status page when there is none) are left out, one sink is passed
// through, several get every event in turn.
func TestFanOut(t *testing.T) {
	var nilStatus *status.Status
	var nilAudit *auditSink
	if auditors() != nil || auditors(nil, nilStatus, nilAudit) != nil {
		t.Error("auditors of nothing present is not nil")
	}
	a, b := &countingAuditor{}, &countingAuditor{}
	if auditors(nil, a, nilStatus) != policy.Auditor(a) {
		t.Error("auditors of one present auditor is not that auditor")
	}
	var n int
	fan := auditors(a, nilStatus, b, valueAuditor{&n})
	fan.PolicyEvent(&policy.Event{})
	if a.n != 1 || b.n != 1 || n != 1 {
		t.Errorf("auditors delivered %d, %d and %d events, want 1 each", a.n, b.n, n)
	}

	var nilQlog *queryLogSink
	var nilTap *dnstapSink
	if queryLoggers(nilQlog, nilTap) != nil || queryLoggers() != nil {
		t.Error("queryLoggers of nothing present is not nil")
	}
	l, m := &countingLogger{}, &countingLogger{}
	if queryLoggers(nilQlog, l) != resolver.QueryLogger(l) {
		t.Error("queryLoggers of one present logger is not that logger")
	}
	queryLoggers(l, nilTap, m).Query(&resolver.QueryEvent{})
	if l.n != 1 || m.n != 1 {
		t.Errorf("queryLoggers delivered %d and %d events, want 1 each", l.n, m.n)
	}
}
