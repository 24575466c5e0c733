package metrics

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// AuditState is what the enforcement log reports to /metrics, read at each
// scrape through the function given to SetAuditState.
type AuditState struct {
	// Writing is false while writes to the log fail (a full disk).
	Writing bool
	// WriteErrors counts failed writes; Lost counts records that were not
	// written (the outage buffer was full, or they were still unwritten at
	// shutdown).
	WriteErrors, Lost uint64
	// BufferedBytes are records waiting in memory for the disk.
	BufferedBytes int
	// Checkpoint is the last signed checkpoint; nil without a signing key.
	Checkpoint *AuditCheckpoint
}

// AuditCheckpoint is a signed checkpoint of the enforcement log, published
// so that an outside party can keep it (see audit.Checkpoint).
type AuditCheckpoint struct {
	Count                  uint64
	Head, Reason, Key, Sig string
	Time                   time.Time
}

// auditCollector produces the jurisdns_audit_* families of the state
// function, when one is set.
type auditCollector struct {
	mu    sync.Mutex
	state func() AuditState

	writing, writeErrors, lost, buffered, cpInfo, cpTime *prometheus.Desc
}

// auditNames are the families of auditCollector (Names lists them).
var auditNames = []string{
	"audit_writing", "audit_write_errors_total", "audit_lost_total", "audit_buffered_bytes",
	"audit_checkpoint_info", "audit_checkpoint_timestamp_seconds",
}

func newAuditCollector() *auditCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(Namespace+"_"+name, help, labels, nil)
	}
	return &auditCollector{
		writing:     d("audit_writing", "1 while the enforcement log is being written, 0 while writes fail (a full disk)."),
		writeErrors: d("audit_write_errors_total", "Failed writes to the enforcement log."),
		lost:        d("audit_lost_total", "Enforcement log records not written: the outage buffer was full, they were still unwritten at shutdown, or they could not be encoded."),
		buffered:    d("audit_buffered_bytes", "Enforcement log records waiting in memory for the disk, in bytes."),
		cpInfo: d("audit_checkpoint_info",
			"Always 1; the labels are the last signed checkpoint of the enforcement log: lines covered, head hash, time, reason, key id and signature. Keep them to check the log later (jurisdns audit verify --checkpoint).",
			"count", "head", "time", "reason", "key", "signature"),
		cpTime: d("audit_checkpoint_timestamp_seconds", "Unix time of the last signed checkpoint of the enforcement log."),
	}
}

func (c *auditCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.writing, c.writeErrors, c.lost, c.buffered, c.cpInfo, c.cpTime} {
		ch <- d
	}
}

func (c *auditCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	f := c.state
	c.mu.Unlock()
	if f == nil {
		return
	}
	s := f()
	writing := 0.0
	if s.Writing {
		writing = 1
	}
	ch <- prometheus.MustNewConstMetric(c.writing, prometheus.GaugeValue, writing)
	ch <- prometheus.MustNewConstMetric(c.writeErrors, prometheus.CounterValue, float64(s.WriteErrors))
	ch <- prometheus.MustNewConstMetric(c.lost, prometheus.CounterValue, float64(s.Lost))
	ch <- prometheus.MustNewConstMetric(c.buffered, prometheus.GaugeValue, float64(s.BufferedBytes))
	if cp := s.Checkpoint; cp != nil {
		ch <- prometheus.MustNewConstMetric(c.cpInfo, prometheus.GaugeValue, 1,
			strconv.FormatUint(cp.Count, 10), cp.Head, cp.Time.UTC().Format(time.RFC3339Nano), cp.Reason, cp.Key, cp.Sig)
		ch <- prometheus.MustNewConstMetric(c.cpTime, prometheus.GaugeValue, unixSeconds(cp.Time))
	}
}

// SetAuditState makes /metrics publish the state of the enforcement log,
// read from f at each scrape (f must be safe for concurrent use). Until it
// is called, or with a nil f, the jurisdns_audit_* families other than
// jurisdns_audit_dropped_total have no series.
func (m *Metrics) SetAuditState(f func() AuditState) {
	if m == nil {
		return
	}
	m.audit.mu.Lock()
	m.audit.state = f
	m.audit.mu.Unlock()
}
