package testtool

import (
	"bytes"
	"sync"
)

// Output collects a child process's output (as its Stdout and Stderr) while
// the test reads it: a bytes.Buffer safe for exec's copying goroutine and
// the test's reads.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

// String is what was written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}
