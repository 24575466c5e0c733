// Package dnstaptest holds test helpers for dnstap output: an in-process
// Frame Streams collector, fstrm_capture (Debian package fstrm-bin) as a
// collector, and decoders for the frames, Policy included.
package dnstaptest

import (
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	tap "github.com/dnstap/golang-dnstap"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/jurisdns/jurisdns/internal/testtool"
)

// Collector is a Frame Streams receiver on a unix socket, as a dnstap
// collector runs one: it accepts connections, answers the bidirectional
// handshake and hands every frame to Frames.
type Collector struct {
	ln     net.Listener
	Frames chan []byte
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
	// accepted counts the connections accepted.
	accepted atomic.Int64
	stalled  atomic.Bool
	discard  bool
	stopOnce sync.Once
	unstall  chan struct{}
}

// Stall makes the collector stop reading (after the frame it is reading):
// its connections stay open and the writer's socket buffer fills up, as with
// a collector that hangs.
func (c *Collector) Stall() { c.stalled.Store(true) }

// Accepted returns the number of connections accepted so far.
func (c *Collector) Accepted() int64 { return c.accepted.Load() }

func SockPath(t testing.TB) string {
	return filepath.Join(t.TempDir(), "tap.sock")
}

func StartCollector(t *testing.T, path string) *Collector {
	t.Helper()
	return startCollector(t, "unix", path, false)
}

// StartTCPCollector starts a collector on 127.0.0.1, on a port the kernel
// picks: Addr says which.
func StartTCPCollector(t *testing.T) *Collector {
	t.Helper()
	return startCollector(t, "tcp", "127.0.0.1:0", false)
}

// StartDiscardCollector starts a collector on a unix socket that completes
// the handshake and then reads and throws away everything, as fast as it
// can (for benchmarks: Frames stays empty, and Close's FINISH never comes).
func StartDiscardCollector(t testing.TB, path string) *Collector {
	t.Helper()
	return startCollector(t, "unix", path, true)
}

// Addr is the address the collector listens on.
func (c *Collector) Addr() string { return c.ln.Addr().String() }

func startCollector(t testing.TB, network, addr string, discard bool) *Collector {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &Collector{ln: ln, Frames: make(chan []byte, 100000), unstall: make(chan struct{}), discard: discard}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.mu.Lock()
			c.conns = append(c.conns, conn)
			c.mu.Unlock()
			c.accepted.Add(1)
			c.wg.Add(1)
			go c.serve(conn)
		}
	}()
	t.Cleanup(c.Stop)
	return c
}

func (c *Collector) serve(conn net.Conn) {
	defer c.wg.Done()
	r, err := tap.NewReader(conn, &tap.ReaderOptions{Bidirectional: true, Timeout: 5 * time.Second})
	if err != nil {
		return
	}
	if c.discard {
		_, _ = io.Copy(io.Discard, conn) // benchmarks: read as fast as possible, keep nothing
		return
	}
	buf := make([]byte, 1<<16)
	for {
		if c.stalled.Load() {
			<-c.unstall // a collector that stopped reading, until Stop
			return
		}
		n, err := r.ReadFrame(buf)
		if err != nil {
			return
		}
		c.Frames <- append([]byte(nil), buf[:n]...)
	}
}

// Stop closes the listener and every connection, as a collector that exits.
func (c *Collector) Stop() {
	c.stopOnce.Do(func() { close(c.unstall) })
	_ = c.ln.Close()
	c.mu.Lock()
	for _, conn := range c.conns {
		_ = conn.Close()
	}
	c.mu.Unlock()
	c.wg.Wait()
}

// Next returns the next frame decoded, failing after a few seconds.
func (c *Collector) Next(t *testing.T) *tap.Dnstap {
	t.Helper()
	select {
	case f := <-c.Frames:
		return Decode(t, f)
	case <-time.After(10 * time.Second):
		t.Fatal("no dnstap frame arrived")
		return nil
	}
}

func Decode(t *testing.T, frame []byte) *tap.Dnstap {
	t.Helper()
	d := new(tap.Dnstap)
	if err := proto.Unmarshal(frame, d); err != nil {
		t.Fatalf("frame does not decode as dnstap.Dnstap: %v", err)
	}
	return d
}

// Policy is dnstap's Policy (field 15 of Message), which the
// released golang-dnstap's generated code keeps as an unknown field.
type Policy struct {
	Type          string
	Rule, Value   string
	Action, Match int32
}

// PolicyOf returns the Policy of m, or nil.
func PolicyOf(t *testing.T, m *tap.Message) *Policy {
	t.Helper()
	b := m.ProtoReflect().GetUnknown()
	var p *Policy
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("bad unknown field: %v", protowire.ParseError(n))
		}
		b = b[n:]
		if num != 15 || typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				t.Fatal(protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			t.Fatal(protowire.ParseError(n))
		}
		b = b[n:]
		p = parsePolicy(t, v)
	}
	return p
}

func parsePolicy(t *testing.T, b []byte) *Policy {
	t.Helper()
	p := new(Policy)
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatal(protowire.ParseError(n))
		}
		b = b[n:]
		switch typ {
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				t.Fatal(protowire.ParseError(n))
			}
			b = b[n:]
			switch num {
			case 1:
				p.Type = string(v)
			case 2:
				p.Rule = string(v)
			case 5:
				p.Value = string(v)
			}
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				t.Fatal(protowire.ParseError(n))
			}
			b = b[n:]
			switch num {
			case 3:
				p.Action = int32(v)
			case 4:
				p.Match = int32(v)
			}
		default:
			t.Fatalf("policy field %d has wire type %d", num, typ)
		}
	}
	return p
}

// ReadCapture decodes every frame of a Frame Streams file (as fstrm_capture
// writes it).
func ReadCapture(t *testing.T, r io.Reader) []*tap.Dnstap {
	t.Helper()
	fr, err := tap.NewReader(r, nil)
	if err != nil {
		t.Fatalf("capture is not a Frame Streams file: %v", err)
	}
	var out []*tap.Dnstap
	buf := make([]byte, 1<<16)
	for {
		n, err := fr.ReadFrame(buf)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("reading the capture: %v", err)
		}
		out = append(out, Decode(t, buf[:n]))
	}
}

// Fstrm is a running fstrm_capture (Debian package fstrm-bin) receiving
// dnstap on a unix socket and writing a Frame Streams file.
type Fstrm struct {
	// Socket is where it listens; File is what it writes.
	Socket, File string
	cmd          *exec.Cmd
	stopped      bool
}

// StartFstrm starts fstrm_capture on socket, writing file, and waits until
// it listens. The test skips when the tool is missing (fails under CI).
func StartFstrm(t testing.TB, socket, file string) *Fstrm {
	t.Helper()
	bin := testtool.Need(t, "fstrm_capture", "fstrm-bin")
	f := &Fstrm{Socket: socket, File: file}
	f.cmd = exec.Command(bin, "-t", "protobuf:dnstap.Dnstap", "-u", socket, "-w", file)
	f.cmd.Stdout, f.cmd.Stderr = os.Stderr, os.Stderr
	if err := f.cmd.Start(); err != nil {
		t.Fatalf("starting fstrm_capture: %v", err)
	}
	t.Cleanup(func() { f.Stop(t) })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("unix", socket); err == nil {
			_ = c.Close() // a connection without a handshake: fstrm_capture drops it
			return f
		}
		if time.Now().After(deadline) {
			t.Fatal("fstrm_capture did not listen within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop ends fstrm_capture (SIGTERM: it closes its output file cleanly) and
// waits for it.
func (f *Fstrm) Stop(t testing.TB) {
	t.Helper()
	if f.stopped {
		return
	}
	f.stopped = true
	_ = f.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = f.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = f.cmd.Process.Kill()
		<-done
		t.Error("fstrm_capture did not exit on SIGTERM within 10s")
	}
	_ = os.Remove(f.Socket)
}

// Frames stops fstrm_capture and decodes every frame it wrote.
func (f *Fstrm) Frames(t *testing.T) []*tap.Dnstap {
	t.Helper()
	f.Stop(t)
	file, err := os.Open(f.File)
	if err != nil {
		t.Fatalf("fstrm_capture wrote nothing: %v", err)
	}
	defer file.Close()
	return ReadCapture(t, file)
}
