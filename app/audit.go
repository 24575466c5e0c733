package app

import (
	"fmt"
	"os"

	"github.com/jurisdns/jurisdns/audit"
	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/metrics"
)

// auditNotWriting is what /readyz lists while the enforcement log cannot be
// written (degraded, or missing with audit.required). It says no more: the
// error, with its path, is on the status API and in the log.
const auditNotWriting = "enforcement log not writing"

// openAudit opens the enforcement log of cfg (audit.path is set) and
// publishes its state on /metrics.
func (a *App) openAudit(cfg *config.Config) (*audit.Writer, error) {
	opts := audit.Options{
		Path: cfg.Audit.Path, MaxSize: cfg.Audit.MaxSize, MaxFiles: cfg.Audit.MaxFiles, Logger: a.log, Now: a.now,
		CheckpointRecords: cfg.Audit.CheckpointRecords, CheckpointInterval: cfg.Audit.CheckpointInterval,
	}
	if f := cfg.Audit.SigningKeyFile; f != "" {
		key, err := audit.ReadPrivateKey(f)
		if err != nil {
			return nil, fmt.Errorf("audit.signing_key_file: %w", err)
		}
		opts.SigningKey = key
		if st, err := os.Stat(f); err == nil && st.Mode().Perm()&0o077 != 0 {
			a.log.Warn("audit.signing_key_file is readable by other users: whoever reads it can re-sign a re-written log",
				"path", f, "mode", st.Mode().Perm().String())
		}
	}
	w, err := audit.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("audit.path: %w", err)
	}
	a.metrics.SetAuditState(func() metrics.AuditState {
		s := w.State()
		ms := metrics.AuditState{Writing: s.Writing, WriteErrors: s.WriteErrors, Lost: s.Failed, BufferedBytes: s.BufferedBytes}
		if cp := s.Checkpoint; cp != nil {
			ms.Checkpoint = &metrics.AuditCheckpoint{Count: cp.Count, Head: cp.Head, Reason: cp.Reason, Key: cp.Key, Sig: cp.Sig, Time: cp.Time}
		}
		return ms
	})
	return w, nil
}

// auditState is the status API's view of the enforcement log.
func (a *App) auditState() *audit.State {
	if a.audit == nil {
		return nil
	}
	s := a.audit.State()
	return &s
}

// degraded lists for /readyz what works only in part.
func (a *App) degraded() []string {
	if a.audit != nil && !a.audit.Writing() {
		return []string{auditNotWriting}
	}
	return nil
}

// auditMissing is what ready lists when audit.required is set and the
// enforcement log cannot be written.
func (a *App) auditMissing() []string {
	if a.boot != nil && a.boot.Audit.Required && a.audit != nil && !a.audit.Writing() {
		return []string{auditNotWriting}
	}
	return nil
}
