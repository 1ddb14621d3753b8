package bill

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
)

// Integrity errors; test them with errors.Is.
var (
	// ErrHashMismatch: the SHA-1 of the decompressed file is not the
	// hash_value of the apply answer. Nothing read from the file is valid.
	ErrHashMismatch = errors.New("bill: SHA-1 of the file does not match hash_value")
	// ErrHashType: the apply answer names a hash_type other than SHA1.
	ErrHashType = errors.New("bill: unsupported hash_type")
	// ErrNotVerified: Verify was called before the file was read to its end.
	ErrNotVerified = errors.New("bill: the file was not read to its end; its hash is unknown")
	// ErrTruncated: the compressed stream ends early (the gzip trailer, or
	// part of the data, is missing).
	ErrTruncated = errors.New("bill: compressed stream truncated")
	// ErrCorrupt: the compressed stream is not valid gzip (bad header,
	// bad deflate data or CRC mismatch).
	ErrCorrupt = errors.New("bill: compressed stream corrupt")
)

// Digest passes the decompressed bill through and hashes it: the SHA-1 that
// WeChat Pay's hash_value names is over the decompressed (original) file
// (wechatpay-apiv3.md 6.1), and is only known once the stream is drained.
type Digest struct {
	r   io.Reader
	h   hash.Hash
	n   int64
	eof bool
}

// NewDigest wraps r.
func NewDigest(r io.Reader) *Digest { return &Digest{r: r, h: sha1.New()} }

// Read reads from the wrapped reader and hashes what it returns.
func (d *Digest) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if n > 0 {
		d.h.Write(p[:n])
		d.n += int64(n)
	}
	if err == io.EOF {
		d.eof = true
	}
	return n, err
}

// Bytes is how many decompressed bytes went through.
func (d *Digest) Bytes() int64 { return d.n }

// Sum is the hex SHA-1 so far.
func (d *Digest) Sum() string { return hex.EncodeToString(d.h.Sum(nil)) }

// Verify compares the digest of the whole stream with the apply answer's
// hash_type and hash_value (hex, any case). It fails with ErrNotVerified
// unless the stream was read to io.EOF.
func (d *Digest) Verify(hashType, hashValue string) error {
	if !strings.EqualFold(strings.TrimSpace(hashType), "SHA1") {
		return fmt.Errorf("%w: %q", ErrHashType, hashType)
	}
	if !d.eof {
		return ErrNotVerified
	}
	if got := d.Sum(); !strings.EqualFold(got, strings.TrimSpace(hashValue)) {
		return fmt.Errorf("%w: computed %s over %d bytes, hash_value %s", ErrHashMismatch, got, d.n, clip([]byte(hashValue)))
	}
	return nil
}

// Gunzip decompresses a gzip stream (every member of a multi-member file),
// classifying failures as ErrTruncated or ErrCorrupt.
func Gunzip(r io.Reader) (io.Reader, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, classifyGzip(err)
	}
	return &gunzipReader{zr: zr}, nil
}

type gunzipReader struct{ zr *gzip.Reader }

func (g *gunzipReader) Read(p []byte) (int, error) {
	n, err := g.zr.Read(p)
	if err != nil && err != io.EOF {
		err = classifyGzip(err)
	}
	return n, err
}

func classifyGzip(err error) error {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("%w: %w", ErrTruncated, err)
	case errors.Is(err, gzip.ErrHeader), errors.Is(err, gzip.ErrChecksum):
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	var ce flate.CorruptInputError
	if errors.As(err, &ce) {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return err
}

// Open returns the decompressed bill of r, gunzipping when the data starts
// with the gzip magic number and passing plain text through otherwise (a
// file a finance user downloaded by hand may be either).
func Open(r io.Reader) (text io.Reader, gzipped bool, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(2)
	if err != nil && err != io.EOF {
		return nil, false, fmt.Errorf("bill: read: %w", err)
	}
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		t, err := Gunzip(br)
		return t, true, err
	}
	return br, false, nil
}
