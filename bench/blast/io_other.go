//go:build !linux

package main

import (
	"errors"
	"net"
	"os"
	"time"

	"golang.org/x/net/ipv4"
)

// xnetConn is a batchConn of golang.org/x/net/ipv4's WriteBatch and
// ReadBatch (one datagram per system call where the OS has no batch calls).
type xnetConn struct {
	c   *net.UDPConn
	pc  *ipv4.PacketConn
	out []ipv4.Message
	in  []ipv4.Message
}

func newBatchConn(c *net.UDPConn, batch int) (batchConn, error) {
	x := &xnetConn{c: c, pc: ipv4.NewPacketConn(c), out: make([]ipv4.Message, batch), in: make([]ipv4.Message, batch)}
	for i := range x.in {
		x.in[i].Buffers = [][]byte{make([]byte, 4096)}
	}
	return x, nil
}

func (x *xnetConn) write(bufs [][]byte) error {
	for i, b := range bufs {
		x.out[i].Buffers = [][]byte{b}
	}
	for sent := 0; sent < len(bufs); {
		k, err := x.pc.WriteBatch(x.out[sent:len(bufs)], 0)
		if err != nil {
			return err
		}
		sent += k
	}
	return nil
}

func (x *xnetConn) read(wait time.Duration, got func([]byte)) error {
	_ = x.c.SetReadDeadline(time.Now().Add(wait))
	k, err := x.pc.ReadBatch(x.in, 0)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	for i := 0; i < k; i++ {
		got(x.in[i].Buffers[0][:x.in[i].N])
	}
	return nil
}

func (x *xnetConn) close() error { return x.c.Close() }
