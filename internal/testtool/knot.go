package testtool

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// KnotZone runs knotd (Debian's knot, the benchmark's upstream) on
// 127.0.0.1, on a port of FreePort, serving zone (zone-file text) for
// origin ("example." form), and returns its address once it answers the
// origin's SOA. It skips or fails the test as Need does when knotd is
// missing, tries three ports before it gives up, and kills knotd in
// t.Cleanup.
func KnotZone(t testing.TB, origin, zone string) string {
	t.Helper()
	bin := Need(t, "knotd", "knot")
	dir := t.TempDir()
	for _, d := range []string{"run", "db"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "z.zone"), []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		port := FreePort(t)
		conf := fmt.Sprintf("server:\n    rundir: %q\n    listen: 127.0.0.1@%d\n    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n"+
			"database:\n    storage: %q\nlog:\n  - target: stderr\n    any: warning\n"+
			"template:\n  - id: default\n    storage: %q\n    journal-content: none\n    zonefile-sync: -1\n"+
			"zone:\n  - domain: %s\n    file: z.zone\n",
			filepath.Join(dir, "run"), port, filepath.Join(dir, "db"), dir, origin)
		confFile := filepath.Join(dir, "knot.conf")
		if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		var logs Output
		cmd := exec.Command(bin, "-c", confFile)
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		c := &dns.Client{Timeout: 200 * time.Millisecond}
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(origin), dns.TypeSOA)
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			select {
			case <-exited:
			default:
				if r, _, err := c.Exchange(m, addr); err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1 {
					t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
					return addr
				}
				continue
			}
			break
		}
		_ = cmd.Process.Kill()
		<-exited
		t.Logf("knotd on port %d did not come up; log:\n%s", port, logs.String())
	}
	t.Fatal("knotd did not come up")
	return ""
}
