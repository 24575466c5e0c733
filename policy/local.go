package policy

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// defaultLocalTimeout bounds opening and reading a local list when
// lists.timeout is not set (a configuration built in code).
const defaultLocalTimeout = 30 * time.Second

// readLocal reads the local list file path within timeout (lists.timeout)
// and ctx. A path that is not a regular file (a FIFO, a device, a
// directory) fails at once with a clear error: it is opened without
// blocking and checked before any read. A file on a hung mount (NFS)
// cannot be interrupted: the read is left to finish in the background and
// the reload fails when the time is up, keeping the last good policy, and
// later reloads and SIGTERM are not held up by it.
func readLocal(ctx context.Context, path string, timeout time.Duration) ([]byte, error) {
	if timeout <= 0 {
		timeout = defaultLocalTimeout
	}
	type result struct {
		data []byte
		err  error
	}
	done := make(chan result, 1) // never blocks the reader left behind
	read := readListFile
	go func() {
		data, err := read(path)
		done <- result{data, err}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-done:
		return r.data, r.err
	case <-t.C:
		return nil, fmt.Errorf("open/read %s: not done after %v (lists.timeout): a hung mount?", path, timeout)
	case <-ctx.Done():
		return nil, fmt.Errorf("open/read %s: %w", path, ctx.Err())
	}
}

// readListFile is readRegular; tests replace it to stand for a hung mount.
var readListFile = readRegular

// maxPrealloc bounds the buffer readRegular reserves from a file's size
// (four times lists.max_size's default); a test lowers it.
var maxPrealloc int64 = 256 << 20

// readRegular reads path, which must be a regular file. O_NONBLOCK keeps
// open(2) from waiting for a writer on a FIFO; it has no effect on a
// regular file.
func readRegular(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		kind := "not a regular file"
		switch {
		case fi.Mode()&fs.ModeNamedPipe != 0:
			kind = "a named pipe (FIFO), not a regular file"
		case fi.IsDir():
			kind = "a directory, not a regular file"
		case fi.Mode()&fs.ModeDevice != 0:
			kind = "a device, not a regular file"
		}
		return nil, fmt.Errorf("%s is %s", path, kind)
	}
	// One buffer of the file's size (and a byte to see the end), as
	// os.ReadFile: io.ReadAll's doublings allocated three times a large
	// list's size on every load. A file that grows meanwhile is read on;
	// one over maxPrealloc (a wrong path, say, to a disk image) is read in
	// growing steps, as before, rather than reserved at once.
	data := make([]byte, 0, min(max(512, fi.Size()+1), maxPrealloc))
	for {
		n, err := f.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			return data, nil
		}
		if err != nil {
			return nil, err
		}
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
	}
}
