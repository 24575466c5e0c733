package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestValidateDnstap(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(d *Dnstap)
		want   []string
	}{
		{name: "off_by_default", change: func(*Dnstap) {}},
		{name: "socket", change: func(d *Dnstap) { d.Socket = "/run/jurisdns/dnstap.sock" }},
		{name: "tcp_ipv6", change: func(d *Dnstap) { d.TCP = "[2001:db8::9]:6000"; d.Messages = []string{"Forwarder"} }},
		{
			name:   "both",
			change: func(d *Dnstap) { d.Socket, d.TCP = "/run/t.sock", "192.0.2.9:6000" },
			want:   []string{"dnstap: socket and tcp are both set: give the collector's unix socket or its TCP address, not both"},
		},
		{
			name:   "tcp_name",
			change: func(d *Dnstap) { d.TCP = "collector.example:6000" },
			want:   []string{`dnstap.tcp: "collector.example:6000": host "collector.example" is not an IP address (no name is resolved for the collector)`},
		},
		{
			name:   "tcp_no_port",
			change: func(d *Dnstap) { d.TCP = "192.0.2.9" },
			want:   []string{`dnstap.tcp: "192.0.2.9" is not IP:port`},
		},
		{
			name:   "tcp_bad_port",
			change: func(d *Dnstap) { d.TCP = "192.0.2.9:0" },
			want:   []string{`dnstap.tcp: "192.0.2.9:0": port "0" is not a number from 1 to 65535`},
		},
		{
			name:   "messages",
			change: func(d *Dnstap) { d.Messages = []string{"client", "resolver", "CLIENT"} },
			want: []string{
				`dnstap.messages[1]: "resolver" is not one of client, forwarder`,
				`dnstap.messages[2]: "CLIENT" is already dnstap.messages[0]`,
			},
		},
		{
			name:   "no_messages",
			change: func(d *Dnstap) { d.Socket, d.Messages = "/run/t.sock", nil },
			want:   []string{"dnstap.messages: is empty: name client, forwarder or both (or turn dnstap off by leaving socket and tcp empty)"},
		},
		{
			name:   "queue",
			change: func(d *Dnstap) { d.QueueSize = 0 },
			want:   []string{"dnstap.queue_size: 0 is not from 1 to 1000000"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Load(LoadOptions{Env: []string{}})
			if err != nil {
				t.Fatal(err)
			}
			tc.change(&cfg.Dnstap)
			equalMessages(t, messages(cfg.Validate()), tc.want)
		})
	}
}

// TestDnstapFromFileAndEnv: the example YAML loads, and the
// environment sets the list.
func TestDnstapFromFileAndEnv(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "c.yaml")
	yaml := "dnstap:\n  socket: /run/jurisdns/dnstap.sock\n  identity: \"\"\n  messages: [client]\n"
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(LoadOptions{Path: path, Env: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	d := cfg.Dnstap
	if !d.Enabled() || d.Socket != "/run/jurisdns/dnstap.sock" || !d.Wants("client") || d.Wants("forwarder") || d.QueueSize != 10000 {
		t.Errorf("loaded %+v", d)
	}
	cfg, err = Load(LoadOptions{Env: []string{"JURISDNS_DNSTAP_TCP=192.0.2.9:6000", "JURISDNS_DNSTAP_MESSAGES=forwarder"}})
	if err != nil {
		t.Fatal(err)
	}
	if d := cfg.Dnstap; d.TCP != "192.0.2.9:6000" || d.Wants("client") || !d.Wants("forwarder") {
		t.Errorf("from the environment: %+v", d)
	}
}
