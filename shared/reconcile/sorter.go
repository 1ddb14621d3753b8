package reconcile

import (
	"bufio"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

// sorter orders encoded entries by (kind, key) in bounded memory: entries
// accumulate in an arena until it holds chunkBytes, then the chunk is
// sorted and spilled to a temporary file (a run); reading merges the runs.
// A day that fits one chunk never touches the disk.
type sorter struct {
	dir        string
	chunkBytes int
	arena      []byte
	offs       []uint32
	runs       []*os.File
	count      int64
	spilled    int64 // bytes written to runs
}

func newSorter(dir string, chunkBytes int) *sorter {
	return &sorter{dir: dir, chunkBytes: chunkBytes}
}

func (s *sorter) add(e *Entry) error {
	if s.arena == nil {
		s.arena = make([]byte, 0, min(s.chunkBytes+4096, 1<<20))
	}
	off := len(s.arena)
	var err error
	if s.arena, err = appendRecord(s.arena, e); err != nil {
		return err
	}
	s.offs = append(s.offs, uint32(off))
	s.count++
	if len(s.arena) >= s.chunkBytes {
		return s.spill()
	}
	return nil
}

func (s *sorter) body(off uint32) []byte {
	n := binary.LittleEndian.Uint32(s.arena[off:])
	return s.arena[off+4 : off+4+n]
}

func (s *sorter) sortChunk() {
	slices.SortFunc(s.offs, func(a, b uint32) int { return compareRecords(s.body(a), s.body(b)) })
}

// spill writes the current chunk, sorted, as a new run.
func (s *sorter) spill() error {
	if len(s.offs) == 0 {
		return nil
	}
	s.sortChunk()
	f, err := os.CreateTemp(s.dir, "reconcile-run-*")
	if err != nil {
		return fmt.Errorf("reconcile: spill: %w", err)
	}
	s.runs = append(s.runs, f)
	w := bufio.NewWriterSize(f, 256<<10)
	for _, off := range s.offs {
		n := binary.LittleEndian.Uint32(s.arena[off:])
		if _, err := w.Write(s.arena[off : off+4+n]); err != nil {
			return fmt.Errorf("reconcile: spill: %w", err)
		}
		s.spilled += int64(4 + n)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("reconcile: spill: %w", err)
	}
	s.arena, s.offs = s.arena[:0], s.offs[:0]
	return nil
}

// iterator returns the entries in order. After it, add must not be called.
func (s *sorter) iterator() (recordIter, error) {
	if len(s.runs) == 0 {
		s.sortChunk()
		return &memIter{s: s}, nil
	}
	if err := s.spill(); err != nil {
		return nil, err
	}
	s.arena, s.offs = nil, nil // the runs hold everything now
	m := &mergeIter{}
	for _, f := range s.runs {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, fmt.Errorf("reconcile: rewind run: %w", err)
		}
		c := &runCursor{r: bufio.NewReaderSize(f, 64<<10)}
		ok, err := c.next()
		if err != nil {
			return nil, err
		}
		if ok {
			m.h = append(m.h, c)
		}
	}
	heap.Init(&m.h)
	return m, nil
}

// close removes the runs.
func (s *sorter) close() error {
	var errs []error
	for _, f := range s.runs {
		errs = append(errs, f.Close(), os.Remove(f.Name()))
	}
	s.runs, s.arena, s.offs = nil, nil, nil
	return errors.Join(errs...)
}

// recordIter yields record bodies in (kind, key) order; a body is valid
// until the next call.
type recordIter interface {
	next() ([]byte, error) // io.EOF at the end
}

type memIter struct {
	s *sorter
	i int
}

func (m *memIter) next() ([]byte, error) {
	if m.i >= len(m.s.offs) {
		return nil, io.EOF
	}
	b := m.s.body(m.s.offs[m.i])
	m.i++
	return b, nil
}

type runCursor struct {
	r   *bufio.Reader
	cur []byte
	buf []byte
}

func (c *runCursor) next() (bool, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		if err == io.EOF {
			return false, nil
		}
		return false, fmt.Errorf("reconcile: read run: %w", err)
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n < 3 || n > 1<<24 {
		return false, errCorruptRecord
	}
	if cap(c.buf) < int(n) {
		c.buf = make([]byte, n, max(int(n), 512))
	}
	c.buf = c.buf[:n]
	if _, err := io.ReadFull(c.r, c.buf); err != nil {
		return false, fmt.Errorf("reconcile: read run: %w", err)
	}
	c.cur = c.buf
	return true, nil
}

type cursorHeap []*runCursor

func (h cursorHeap) Len() int           { return len(h) }
func (h cursorHeap) Less(i, j int) bool { return compareRecords(h[i].cur, h[j].cur) < 0 }
func (h cursorHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *cursorHeap) Push(x any)        { *h = append(*h, x.(*runCursor)) }
func (h *cursorHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// mergeIter merges sorted runs. The body it returns is the cursor's
// buffer, which the cursor only reuses when advanced on the next call.
type mergeIter struct {
	h    cursorHeap
	last *runCursor
}

func (m *mergeIter) next() ([]byte, error) {
	if m.last != nil {
		ok, err := m.last.next()
		if err != nil {
			return nil, err
		}
		if ok {
			heap.Fix(&m.h, 0)
		} else {
			heap.Pop(&m.h)
		}
		m.last = nil
	}
	if len(m.h) == 0 {
		return nil, io.EOF
	}
	c := m.h[0]
	m.last = c
	return c.cur, nil
}
