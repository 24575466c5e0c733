// Package grafana holds the Grafana dashboard of jurisdns (jurisdns.json),
// built over the Prometheus metrics of the metrics package. Import it in
// Grafana (Dashboards → New → Import) and pick a Prometheus data source; the
// variables select instances and jurisdictions. alerts.yaml holds
// Prometheus alerting rules over the same metrics (docs/dashboard.md).
//
// The tests of this package check that the JSON and the rules parse and
// that every query names only metrics that /metrics exports
// (metrics.New().Names()).
package grafana

import _ "embed"

// Dashboard is the dashboard JSON.
//
//go:embed jurisdns.json
var Dashboard []byte
