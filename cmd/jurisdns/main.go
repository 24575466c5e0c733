// Command jurisdns is a DNS resolver that enforces per-jurisdiction bans of
// AI services: it sinkholes banned names for the clients whose
// jurisdictions ban them, says why in every blocked answer, and forwards
// everything else upstream.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "jurisdns:", err)
		os.Exit(1)
	}
}

// exitError carries an exit code for errors already reported.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func newRoot() *cobra.Command {
	serve := newServe()
	root := &cobra.Command{
		Use:   "jurisdns",
		Short: "DNS resolver that enforces per-jurisdiction bans of AI services",
		Long: `jurisdns checks every query against the blocklists of the jurisdictions that
apply to the client, sinkholes banned names with an answer that says why
(jurisdiction, instrument, rule; RFC 8914 EDE), and forwards everything else
upstream with a cache. Without a subcommand it serves.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE:          serve.RunE,
	}
	root.Flags().AddFlagSet(serve.Flags())
	root.AddCommand(serve, newValidate(), newVersion(), newConfigCmd(), newCheck(), newLists(), newHealth(), newAudit())
	return root
}

// signals returns the channel the serve loop reads: SIGHUP reloads,
// SIGINT/SIGTERM drain and exit.
func signals() (<-chan os.Signal, func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	return ch, func() { signal.Stop(ch) }
}
