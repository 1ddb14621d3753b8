package reconcile

import (
	"bufio"
	"bytes"
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
	offs       []sortKey
	tmp        []sortKey        // radix sort scratch
	counts     *[16][256]uint32 // radix sort byte counts
	runs       []*os.File
	reopened   []*os.File // second readers of the runs (reread)
	sealed     bool       // the last chunk is sorted and stays in memory
	count      int64
	spilled    int64  // bytes written to runs
	wbuf       []byte // spill write buffer

	// adaptive: entries that arrive in order (the ledger's day indexes are
	// read in key order) are appended to one run as they come, without
	// going through the arena and the sort; only out-of-order ones do.
	adaptive  bool
	appendRun *os.File
	appendW   *bufio.Writer
	lastKind  Kind
	lastKey   []byte
	rec       []byte
}

// sortKey is a record's place and length in the arena with the first 16
// bytes of its sort key (kind, then key, zero-padded, big-endian): most
// comparisons are decided by these two words without touching the arena,
// and a spill copies the record without first reading its length there
// (the records are read in sorted order, scattered over the arena: each
// read is a cache miss, and a copy that waits for another would be two).
type sortKey struct {
	hi, lo uint64
	off, n uint32
}

func newSortKey(kind Kind, key []byte, off int) sortKey {
	if n := len(key); n >= 8 {
		// Straight from the key: hi is the kind and key[0:7]; lo is
		// key[7:15], from the last eight bytes when the key is shorter
		// (shifted up, zeros after it).
		k := sortKey{hi: uint64(kind)<<56 | binary.BigEndian.Uint64(key)>>8, off: uint32(off)}
		if n >= 15 {
			k.lo = binary.BigEndian.Uint64(key[7:])
		} else {
			k.lo = binary.BigEndian.Uint64(key[n-8:]) << (8 * (15 - n))
		}
		return k
	}
	var b [16]byte
	b[0] = byte(kind)
	copy(b[1:], key)
	return sortKey{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:]), off: uint32(off)}
}

func newSorter(dir string, chunkBytes int) *sorter {
	return &sorter{dir: dir, chunkBytes: chunkBytes}
}

// inOrder reports whether e sorts at or after the last appended entry.
func (s *sorter) inOrder(e *Entry) bool {
	if s.lastKey == nil {
		return true
	}
	if e.Kind != s.lastKind {
		return e.Kind > s.lastKind
	}
	return bytes.Compare(e.Key, s.lastKey) >= 0
}

func (s *sorter) add(e *Entry) error {
	if s.adaptive && s.inOrder(e) {
		var err error
		if s.rec, err = appendRecord(s.rec[:0], e); err != nil {
			return err
		}
		if s.appendRun == nil {
			f, err := os.CreateTemp(s.dir, "reconcile-run-*")
			if err != nil {
				return fmt.Errorf("reconcile: spill: %w", err)
			}
			s.appendRun, s.appendW = f, bufio.NewWriterSize(f, 256<<10)
		}
		if _, err := s.appendW.Write(s.rec); err != nil {
			return fmt.Errorf("reconcile: spill: %w", err)
		}
		s.spilled += int64(len(s.rec))
		s.lastKind, s.lastKey = e.Kind, append(s.lastKey[:0], e.Key...)
		s.count++
		return nil
	}
	if need := len(s.arena) + recordBound(e); need > cap(s.arena) {
		// Grow geometrically, but never past one chunk plus the largest
		// record that can cross it: the arena is the bulk of the memory
		// bound, and at that size it never grows (nor copies) again.
		c := min(max(2*cap(s.arena), 64<<10, need), s.chunkBytes+maxRecordBound)
		grown := make([]byte, len(s.arena), max(c, need))
		copy(grown, s.arena)
		s.arena = grown
	}
	off := len(s.arena)
	var err error
	if s.arena, err = appendRecord(s.arena, e); err != nil {
		return err
	}
	k := newSortKey(e.Kind, e.Key, off)
	k.n = uint32(len(s.arena) - off)
	s.offs = append(s.offs, k)
	s.count++
	if len(s.arena) >= s.chunkBytes {
		return s.spill()
	}
	return nil
}

// appendBody appends a record body that sorts at or after every body
// appended before (the caller passes them in order) to the sorter's one
// in-order run, as it is: no decoding, no sort.
func (s *sorter) appendBody(body []byte) error {
	if s.appendRun == nil {
		f, err := os.CreateTemp(s.dir, "reconcile-run-*")
		if err != nil {
			return fmt.Errorf("reconcile: spill: %w", err)
		}
		s.appendRun, s.appendW = f, bufio.NewWriterSize(f, 256<<10)
	}
	var n [recordLenBytes]byte
	binary.LittleEndian.PutUint16(n[:], uint16(len(body)))
	if _, err := s.appendW.Write(n[:]); err != nil {
		return fmt.Errorf("reconcile: spill: %w", err)
	}
	if _, err := s.appendW.Write(body); err != nil {
		return fmt.Errorf("reconcile: spill: %w", err)
	}
	s.spilled += int64(len(n) + len(body))
	s.count++
	return nil
}

func (s *sorter) body(off uint32) []byte {
	b, _ := recordBody(s.arena[off:])
	return b
}

// sortChunk orders the chunk's keys: a radix sort on their 16-byte
// prefixes, then, among equal prefixes (keys longer than 15 bytes that
// share them), a comparison of the whole keys. Both are stable, so equal
// keys keep the order they were added in.
func (s *sorter) sortChunk() {
	if cap(s.tmp) < len(s.offs) {
		s.tmp = make([]sortKey, cap(s.offs))
	}
	if s.counts == nil {
		s.counts = new([16][256]uint32)
	}
	sorted, spare := radixSort(s.offs, s.tmp[:len(s.offs)], s.counts)
	s.offs, s.tmp = sorted, spare[:0]
	for i := 0; i < len(s.offs); {
		j := i + 1
		for j < len(s.offs) && s.offs[j].hi == s.offs[i].hi && s.offs[j].lo == s.offs[i].lo {
			j++
		}
		if j-i > 1 {
			slices.SortStableFunc(s.offs[i:j], func(a, b sortKey) int { return compareRecords(s.body(a.off), s.body(b.off)) })
		}
		i = j
	}
}

// radixSort sorts keys by (hi, lo), least significant byte first, one
// counting pass per byte; a byte every key shares (the kind, a common key
// prefix, the padding of short keys) costs no pass. tmp is scratch of
// keys' length; the result is in sorted, and spare is the other slice.
// Keys are sorted in time linear in their number, where a comparison sort
// (log2 of a chunk's ~100,000 keys is 17) was a tenth of the whole
// reconciliation.
func radixSort(keys, tmp []sortKey, counts *[16][256]uint32) (sorted, spare []sortKey) {
	if len(keys) < 2 {
		return keys, tmp
	}
	*counts = [16][256]uint32{}
	for _, k := range keys {
		lo, hi := k.lo, k.hi
		for b := range 8 {
			counts[b][byte(lo>>(8*b))]++
			counts[8+b][byte(hi>>(8*b))]++
		}
	}
	src, dst := keys, tmp
	for d := range 16 {
		c := &counts[d]
		word, shift := &src[0].lo, 8*uint(d%8)
		if d >= 8 {
			word = &src[0].hi
		}
		if int(c[byte(*word>>shift)]) == len(src) {
			continue // every key has this byte
		}
		var next [256]uint32
		sum := uint32(0)
		for v, n := range c {
			next[v] = sum
			sum += n
		}
		if d < 8 {
			for _, k := range src {
				b := byte(k.lo >> shift)
				dst[next[b]] = k
				next[b]++
			}
		} else {
			for _, k := range src {
				b := byte(k.hi >> shift)
				dst[next[b]] = k
				next[b]++
			}
		}
		src, dst = dst, src
	}
	return src, dst
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
	if s.wbuf == nil {
		s.wbuf = make([]byte, 0, 256<<10)
	}
	buf := s.wbuf[:0]
	for _, k := range s.offs {
		if len(buf)+int(k.n) > cap(buf) {
			if _, err := f.Write(buf); err != nil {
				return fmt.Errorf("reconcile: spill: %w", err)
			}
			buf = buf[:0]
		}
		buf = append(buf, s.arena[k.off:k.off+k.n]...)
	}
	if _, err := f.Write(buf); err != nil {
		return fmt.Errorf("reconcile: spill: %w", err)
	}
	s.spilled += int64(len(s.arena))
	s.arena, s.offs = s.arena[:0], s.offs[:0]
	return nil
}

// seal ends the adding phase. The last chunk stays in memory, sorted:
// the iterators merge it with the runs instead of writing and reading it.
func (s *sorter) seal() error {
	s.sortChunk()
	s.sealed, s.tmp = true, nil
	return nil
}

// iterator returns the entries in order. After it, add must not be called.
func (s *sorter) iterator() (recordIter, error) {
	if s.appendRun != nil {
		if err := s.appendW.Flush(); err != nil {
			return nil, fmt.Errorf("reconcile: spill: %w", err)
		}
		s.runs = append(s.runs, s.appendRun)
		s.appendRun, s.appendW = nil, nil
	}
	if !s.sealed {
		if err := s.seal(); err != nil {
			return nil, err
		}
	}
	if len(s.runs) == 0 {
		return &memIter{s: s}, nil
	}
	files := make([]*os.File, len(s.runs))
	for i, f := range s.runs {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, fmt.Errorf("reconcile: rewind run: %w", err)
		}
		files[i] = f
	}
	return s.merge(files, 64<<10)
}

// merge returns a merge of the runs read from files and the sorted chunk
// in memory.
func (s *sorter) merge(files []*os.File, bufSize int) (recordIter, error) {
	m := &mergeIter{}
	cursors := make([]*runCursor, 0, len(files)+1)
	for _, f := range files {
		cursors = append(cursors, &runCursor{r: bufio.NewReaderSize(f, bufSize)})
	}
	if len(s.offs) > 0 {
		cursors = append(cursors, &runCursor{mem: s})
	}
	for _, c := range cursors {
		ok, err := c.next()
		if err != nil {
			return nil, err
		}
		if ok {
			m.h = append(m.h, c)
		}
	}
	m.init()
	return m, nil
}

// reread returns a second iterator over the entries, independent of the
// one iterator returned (which may still be in use): the runs are opened
// again. It must follow iterator.
func (s *sorter) reread() (recordIter, error) {
	if len(s.runs) == 0 {
		return &memIter{s: s}, nil
	}
	files := make([]*os.File, len(s.runs))
	for i, run := range s.runs {
		f, err := os.Open(run.Name())
		if err != nil {
			return nil, fmt.Errorf("reconcile: reopen run: %w", err)
		}
		s.reopened = append(s.reopened, f)
		files[i] = f
	}
	return s.merge(files, 16<<10)
}

// close removes the runs.
func (s *sorter) close() error {
	var errs []error
	for _, f := range s.reopened {
		errs = append(errs, f.Close())
	}
	s.reopened = nil
	if s.appendRun != nil {
		s.runs = append(s.runs, s.appendRun)
		s.appendRun = nil
	}
	for _, f := range s.runs {
		errs = append(errs, f.Close(), os.Remove(f.Name()))
	}
	s.runs, s.arena, s.offs, s.tmp = nil, nil, nil, nil
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
	b := m.s.body(m.s.offs[m.i].off)
	m.i++
	return b, nil
}

// runCursor reads one run, or with mem set the sorted chunk in memory.
// The current record is a slice of the bufio buffer itself (Peek), or of
// the arena, valid until the cursor advances: no copy.
type runCursor struct {
	r    *bufio.Reader
	cur  []byte
	key  sortKey // prefix of cur's sort key (off unused)
	skip int     // bytes of the current record still in the buffer
	mem  *sorter
	i    int
}

func (c *runCursor) next() (bool, error) {
	if c.mem != nil {
		if c.i >= len(c.mem.offs) {
			return false, nil
		}
		c.key = c.mem.offs[c.i]
		c.cur = c.mem.body(c.key.off)
		c.i++
		return true, nil
	}
	if c.skip > 0 {
		if _, err := c.r.Discard(c.skip); err != nil {
			return false, fmt.Errorf("reconcile: read run: %w", err)
		}
		c.skip = 0
	}
	hdr, err := c.r.Peek(recordLenBytes)
	if err != nil {
		if err == io.EOF && len(hdr) == 0 {
			return false, nil
		}
		return false, fmt.Errorf("reconcile: read run: %w", err)
	}
	n := recordLenBytes + int(binary.LittleEndian.Uint16(hdr))
	if n > c.r.Size() {
		return false, errCorruptRecord
	}
	rec, err := c.r.Peek(n)
	if err != nil {
		return false, fmt.Errorf("reconcile: read run: %w", err)
	}
	c.cur, c.skip = rec[recordLenBytes:], n
	if !checkRecord(c.cur) {
		return false, errCorruptRecord
	}
	kind, key := recordKey(c.cur)
	c.key = newSortKey(Kind(kind), key, 0)
	return true, nil
}

func lessCursor(a, b *runCursor) bool {
	switch {
	case a.key.hi != b.key.hi:
		return a.key.hi < b.key.hi
	case a.key.lo != b.key.lo:
		return a.key.lo < b.key.lo
	}
	return compareRecords(a.cur, b.cur) < 0
}

// mergeIter merges sorted runs with a binary min-heap of cursors. The
// body it returns is the cursor's buffer, which the cursor only reuses
// when advanced on the next call.
type mergeIter struct {
	h    []*runCursor
	last bool
}

func (m *mergeIter) init() {
	for i := len(m.h)/2 - 1; i >= 0; i-- {
		m.down(i)
	}
}

func (m *mergeIter) down(i int) {
	h := m.h
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		j := l
		if r := l + 1; r < len(h) && lessCursor(h[r], h[l]) {
			j = r
		}
		if !lessCursor(h[j], h[i]) {
			return
		}
		h[i], h[j] = h[j], h[i]
		i = j
	}
}

func (m *mergeIter) next() ([]byte, error) {
	if m.last {
		ok, err := m.h[0].next()
		if err != nil {
			return nil, err
		}
		if !ok {
			m.h[0] = m.h[len(m.h)-1]
			m.h = m.h[:len(m.h)-1]
		}
		if len(m.h) > 0 {
			m.down(0)
		}
		m.last = false
	}
	if len(m.h) == 0 {
		return nil, io.EOF
	}
	m.last = true
	return m.h[0].cur, nil
}
