// Command jurisdns is a DNS resolver that enforces per-jurisdiction bans of
// AI services: it sinkholes banned names for the clients whose
// jurisdictions ban them, says why in every blocked answer, and forwards
// everything else upstream.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/jurisdns/jurisdns/app"
	"github.com/jurisdns/jurisdns/config"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the command line args with the given output and returns the
// exit code: what main does, callable from tests.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		fmt.Fprintln(stderr, "jurisdns:", err)
		return 1
	}
	return 0
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
		Version:       app.Build().Version,
	}
	root.SetVersionTemplate(app.Build().String())
	root.Flags().AddFlagSet(serve.Flags())
	root.AddCommand(serve, newValidate(), newVersion(), newConfigCmd(), newCheck(), newLists(), newHealth(), newAudit(),
		newReload(), newStatus())
	return root
}

// configFlag defines --config/-c alone: the commands that only read the
// configuration (check, lists, validate, health, reload, status) take no
// serving flags, so their help shows only what they use.
func configFlag(fs *pflag.FlagSet) {
	fs.StringP("config", "c", "", "configuration file (YAML); default $"+config.EnvConfig+", else the embedded default")
}

// signals returns the channel the serve loop reads: SIGHUP reloads,
// SIGINT/SIGTERM drain and exit.
func signals() (<-chan os.Signal, func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	return ch, func() { signal.Stop(ch) }
}
