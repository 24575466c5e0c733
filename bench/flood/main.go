// Command flood is the client of the tcp-flood workload of bench/run.sh: one
// TCP connection that pipelines -n queries for -name and never reads an
// answer (its receive buffer is made small, so the server's writes block
// at once), held open for -hold, then closed. It prints how many queries
// it managed to write: a server that bounds the queries in flight per
// connection stops reading, and the writes block. It queries only -server.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

func main() {
	server := flag.String("server", "127.0.0.1:5303", "server to flood (TCP)")
	name := flag.String("name", "", "name to ask for (A)")
	n := flag.Int("n", 300000, "queries to pipeline")
	hold := flag.Duration("hold", 10*time.Second, "keep the connection open this long, never reading")
	flag.Parse()
	if *name == "" {
		fmt.Fprintln(os.Stderr, "flood: -name is required")
		os.Exit(2)
	}
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c, err := d.Dial("tcp", *server)
	if err != nil {
		fmt.Fprintln(os.Stderr, "flood:", err)
		os.Exit(1)
	}
	defer c.Close()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(*name), dns.TypeA)
	var frames []byte
	for i := 0; i < *n; i++ {
		m.Id = uint16(i)
		b, err := m.Pack()
		if err != nil {
			fmt.Fprintln(os.Stderr, "flood:", err)
			os.Exit(1)
		}
		frames = binary.BigEndian.AppendUint16(frames, uint16(len(b)))
		frames = append(frames, b...)
	}
	per := len(frames) / *n
	start := time.Now()
	_ = c.SetWriteDeadline(start.Add(*hold))
	written, _ := c.Write(frames)         // blocks once the server stops reading
	time.Sleep(*hold - time.Since(start)) // hold the connection, unread, for the rest

	fmt.Printf("flood: wrote %d of %d queries\n", written/per, *n)
}
