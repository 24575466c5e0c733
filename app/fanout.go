package app

import (
	"reflect"

	"github.com/jurisdns/jurisdns/metrics"
	"github.com/jurisdns/jurisdns/policy"
	"github.com/jurisdns/jurisdns/resolver"
)

// The server takes one policy.Auditor and one resolver.QueryLogger; the
// sinks behind them (the enforcement log, the status page, the query log,
// dnstap) are each optional. auditors and queryLoggers fan an event out to
// the sinks that are present, in order.

// auditors returns one Auditor that hands every policy event to each
// auditor of as that is present; nil when none is.
func auditors(as ...policy.Auditor) policy.Auditor {
	out := present(as)
	switch len(out) {
	case 0:
		return nil
	case 1:
		return out[0]
	}
	return auditTee(out)
}

type auditTee []policy.Auditor

// policyHits counts policy events in jurisdns_policy_hits_total.
type policyHits struct{ m *metrics.Metrics }

func (p policyHits) PolicyEvent(ev *policy.Event) {
	p.m.PolicyHit(ev.Jurisdiction.ID, ev.Action, ev.Mode)
}

func (t auditTee) PolicyEvent(ev *policy.Event) {
	for _, a := range t {
		a.PolicyEvent(ev)
	}
}

// queryLoggers returns one QueryLogger that hands every answered query to
// each logger of ls that is present; nil when none is.
func queryLoggers(ls ...resolver.QueryLogger) resolver.QueryLogger {
	out := present(ls)
	switch len(out) {
	case 0:
		return nil
	case 1:
		return out[0]
	}
	return queryTee(out)
}

type queryTee []resolver.QueryLogger

func (t queryTee) Query(ev *resolver.QueryEvent) {
	for _, l := range t {
		l.Query(ev)
	}
}

// present returns the sinks of xs that are there: neither a nil interface
// nor one that holds a nil pointer (a sink that is off, e.g. a nil
// *status.Status), which would fail at the first event.
func present[T any](xs []T) []T {
	var out []T
	for _, x := range xs {
		v := reflect.ValueOf(x)
		if !v.IsValid() {
			continue
		}
		switch v.Kind() {
		case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan:
			if v.IsNil() {
				continue
			}
		}
		out = append(out, x)
	}
	return out
}
