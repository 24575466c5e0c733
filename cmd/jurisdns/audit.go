package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/jurisdns/jurisdns/audit"
)

func newAudit() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Enforcement log tools"}
	cmd.AddCommand(newAuditVerify(), newAuditKeygen())
	return cmd
}

func newAuditVerify() *cobra.Command {
	var pubFile, cpFile string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify [--public-key K [--checkpoint C]] FILE...",
		Short: "Verify an enforcement log: its hash chain and, with --public-key, its signed checkpoints (a single path takes its rotated set)",
		Long: `verify checks the hash chain of the enforcement log, oldest file first; a
single path takes its rotated set (path.N … path.1, path). It names the
file and line of the first problem and exits 1.

A hash chain alone only catches careless edits: whoever can write the file
can re-compute it. With --public-key (the PEM public key of
audit.signing_key_file) the signed checkpoints are checked too, and an
edited, re-chained or head-deleted log fails. A log cut short is caught
with --checkpoint: a checkpoint kept elsewhere (from /api/status, under
audit.checkpoint, or the jurisdns_audit_checkpoint_info metric), which
the log must still hold.`,
		Args: cobra.MinimumNArgs(1),
	}
	cmd.Flags().StringVar(&pubFile, "public-key", "", "PEM Ed25519 public key that checks the signed checkpoints")
	cmd.Flags().StringVar(&cpFile, "checkpoint", "", "JSON checkpoint kept elsewhere that the log must still hold (needs --public-key)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var opts audit.VerifyOptions
		if pubFile != "" {
			k, err := audit.ReadPublicKey(pubFile)
			if err != nil {
				return fmt.Errorf("--public-key: %w", err)
			}
			opts.PublicKey = k
		}
		if cpFile != "" {
			if pubFile == "" {
				return errors.New("--checkpoint needs --public-key: an unsigned checkpoint proves nothing")
			}
			cp, err := audit.ReadCheckpoint(cpFile)
			if err != nil {
				return fmt.Errorf("--checkpoint: %w", err)
			}
			opts.Checkpoint = &cp
		}
		files := args
		if len(args) == 1 {
			set, err := audit.RotatedSet(args[0])
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			if err == nil {
				files = set
			}
		}
		rep, err := audit.VerifyWith(opts, files...)
		if err != nil {
			fmt.Fprintln(cmd.ErrOrStderr(), err)
			return exitError{1}
		}
		out := cmd.OutOrStdout()
		if asJSON {
			b, _ := json.Marshal(rep)
			fmt.Fprintf(out, "%s\n", b)
			return nil
		}
		fmt.Fprintln(out, verifySummary(rep, opts))
		return nil
	}
	return cmd
}

// verifySummary is the one line verify prints on success.
func verifySummary(rep audit.Report, opts audit.VerifyOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ok: %d %s in %d %s", rep.Records, plural(rep.Records, "line"), rep.Files, plural(rep.Files, "file"))
	if rep.Records > 0 {
		fmt.Fprintf(&b, ", seq %d-%d", rep.First, rep.Last)
		if rep.Genesis {
			b.WriteString(" from genesis")
		} else {
			b.WriteString(" (older lines rotated away)")
		}
		fmt.Fprintf(&b, ", head %s", rep.LastHash)
	}
	switch {
	case rep.Signed:
		fmt.Fprintf(&b, "; %d signed %s verified", rep.Checkpoints, plural(rep.Checkpoints, "checkpoint"))
		fmt.Fprintf(&b, ", the last covering %d %s", rep.LastCheckpoint, plural(int(rep.LastCheckpoint), "line"))
		if rep.Unsigned > 0 {
			fmt.Fprintf(&b, "; %d %s after it not signed yet", rep.Unsigned, plural(rep.Unsigned, "line"))
		}
	case rep.Checkpoints > 0:
		fmt.Fprintf(&b, "; %d %s not checked: give --public-key", rep.Checkpoints, plural(rep.Checkpoints, "checkpoint"))
	default:
		b.WriteString("; not signed: a re-written or cut log would pass too")
	}
	if opts.Checkpoint != nil {
		fmt.Fprintf(&b, "; the checkpoint given (count %d) is in the log", opts.Checkpoint.Count)
	}
	return b.String()
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func newAuditKeygen() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "keygen --out FILE",
		Short: "Write a new Ed25519 key pair for audit.signing_key_file: FILE (PEM PKCS #8, mode 0600) and FILE.pub",
		Args:  cobra.NoArgs,
	}
	cmd.Flags().StringVar(&out, "out", "", "private key file to create (the public key goes to FILE.pub)")
	_ = cmd.MarkFlagRequired("out")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		priv, pub, err := audit.GenerateKey()
		if err != nil {
			return err
		}
		if err := writeNew(out, priv, 0o600); err != nil {
			return err
		}
		if err := writeNew(out+".pub", pub, 0o644); err != nil {
			_ = os.Remove(out)
			return err
		}
		k, err := audit.ReadPublicKey(out + ".pub")
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (private: audit.signing_key_file) and %s (public: audit verify --public-key); key id %s\n",
			out, out+".pub", audit.KeyID(k))
		return nil
	}
	return cmd
}

// writeNew creates path with data; it never overwrites a file.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
	}
	return err
}
