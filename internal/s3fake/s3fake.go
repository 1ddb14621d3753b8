// Package s3fake is an in-memory stand-in for the Amazon S3 REST endpoint,
// for tests and local development only.
//
// It speaks enough of the protocol for the real aws-sdk-go-v2 s3 client
// with path-style addressing:
//
//	srv := httptest.NewServer(s3fake.New("bills"))
//	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
//		o.BaseEndpoint = aws.String(srv.URL)
//		o.UsePathStyle = true
//	})
//
// Operations: PutObject, GetObject, CreateMultipartUpload, UploadPart,
// CompleteMultipartUpload and AbortMultipartUpload. Like S3 it checks what
// the client sends: an AWS4-HMAC-SHA256 Authorization header (the signature
// itself is not verified), the payload hash, Content-MD5 and the
// x-amz-checksum-* headers or aws-chunked trailers (BadDigest on a
// mismatch), part order, part ETags and checksums, and the 5 MiB minimum of
// every part but the last (EntityTooSmall). Errors are S3's XML bodies.
package s3fake

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MinPartSize is S3's minimum size of every part but the last.
const MinPartSize = 5 << 20

// maxObjectBytes bounds what the fake accepts in one request.
const maxObjectBytes = 1 << 30

// Server is a fake S3 endpoint. All methods are safe for concurrent use.
type Server struct {
	mu       sync.Mutex
	buckets  map[string]*bucket
	uploads  int
	failNext int
	calls    map[string]int
	now      func() time.Time
}

type bucket struct {
	objects map[string]*object
	uploads map[string]*upload
}

type object struct {
	data        []byte
	etag        string
	contentType string
	modified    time.Time
}

type upload struct {
	key         string
	contentType string
	algorithm   string // CRC32, CRC32C, SHA1, SHA256 or ""
	parts       map[int]*part
}

type part struct {
	data     []byte
	etag     string
	checksum string
}

// New returns a server with the named (empty) buckets.
func New(buckets ...string) *Server {
	s := &Server{buckets: map[string]*bucket{}, calls: map[string]int{}, now: time.Now}
	for _, b := range buckets {
		s.CreateBucket(b)
	}
	return s
}

// CreateBucket adds an empty bucket (a no-op when it exists).
func (s *Server) CreateBucket(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.buckets[name]; !ok {
		s.buckets[name] = &bucket{objects: map[string]*object{}, uploads: map[string]*upload{}}
	}
}

// Object returns a copy of an object's content.
func (s *Server) Object(bucketName, key string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.buckets[bucketName]
	if !ok {
		return nil, false
	}
	o, ok := b.objects[key]
	if !ok {
		return nil, false
	}
	return bytes.Clone(o.data), true
}

// Keys lists a bucket's object keys, sorted.
func (s *Server) Keys(bucketName string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.buckets[bucketName]
	if !ok {
		return nil
	}
	keys := make([]string, 0, len(b.objects))
	for k := range b.objects {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// PendingUploads counts multipart uploads neither completed nor aborted.
func (s *Server) PendingUploads(bucketName string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.buckets[bucketName]; ok {
		return len(b.uploads)
	}
	return 0
}

// Calls reports how many requests of an operation (PutObject, GetObject,
// CreateMultipartUpload, UploadPart, CompleteMultipartUpload,
// AbortMultipartUpload) were answered, whatever the outcome.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// FailNext makes the next n requests answer 500 InternalError (the SDK
// retries those).
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = n
}

type s3Error struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Resource  string   `xml:"Resource,omitempty"`
	RequestID string   `xml:"RequestId"`
	status    int
}

func errorf(status int, code, format string, args ...any) *s3Error {
	return &s3Error{Code: code, Message: fmt.Sprintf(format, args...), status: status}
}

func writeXML(w http.ResponseWriter, status int, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(b)
}

// ServeHTTP answers one S3 request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("x-amz-request-id", "FAKE"+strconv.FormatInt(time.Now().UnixNano(), 36))
	op, bucketName, key, err := route(r)
	if err == nil {
		s.mu.Lock()
		s.calls[op]++
		fail := s.failNext > 0
		if fail {
			s.failNext--
		}
		s.mu.Unlock()
		if fail {
			err = errorf(http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again. (injected)")
		}
	}
	if err == nil && !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		err = errorf(http.StatusForbidden, "AccessDenied", "request is not signed with AWS4-HMAC-SHA256")
	}
	if err == nil {
		err = s.serve(w, r, op, bucketName, key)
	}
	if err != nil {
		e := err
		e.Resource = r.URL.Path
		e.RequestID = w.Header().Get("x-amz-request-id")
		if r.Method == http.MethodHead {
			w.WriteHeader(e.status)
			return
		}
		writeXML(w, e.status, e)
	}
}

// route names the operation of a path-style request.
func route(r *http.Request) (op, bucketName, key string, err *s3Error) {
	path := strings.TrimPrefix(r.URL.Path, "/")
	bucketName, key, _ = strings.Cut(path, "/")
	if bucketName == "" || key == "" {
		return "", "", "", errorf(http.StatusNotImplemented, "NotImplemented", "only object operations with path-style addressing are supported")
	}
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodPut && q.Has("uploadId"):
		return "UploadPart", bucketName, key, nil
	case r.Method == http.MethodPut:
		if r.Header.Get("x-amz-copy-source") != "" {
			break
		}
		return "PutObject", bucketName, key, nil
	case r.Method == http.MethodGet && !q.Has("uploadId"):
		return "GetObject", bucketName, key, nil
	case r.Method == http.MethodPost && q.Has("uploads"):
		return "CreateMultipartUpload", bucketName, key, nil
	case r.Method == http.MethodPost && q.Has("uploadId"):
		return "CompleteMultipartUpload", bucketName, key, nil
	case r.Method == http.MethodDelete && q.Has("uploadId"):
		return "AbortMultipartUpload", bucketName, key, nil
	}
	return "", "", "", errorf(http.StatusNotImplemented, "NotImplemented", "%s %s is not supported by s3fake", r.Method, r.URL.RequestURI())
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, op, bucketName, key string) *s3Error {
	s.mu.Lock()
	b, ok := s.buckets[bucketName]
	s.mu.Unlock()
	if !ok {
		return errorf(http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist")
	}
	switch op {
	case "PutObject":
		data, sums, err := readBody(r)
		if err != nil {
			return err
		}
		etag := md5hex(data)
		s.mu.Lock()
		b.objects[key] = &object{data: data, etag: etag, contentType: r.Header.Get("Content-Type"), modified: s.now()}
		s.mu.Unlock()
		echoChecksums(w, sums)
		w.Header().Set("ETag", `"`+etag+`"`)
		w.WriteHeader(http.StatusOK)
	case "GetObject":
		s.mu.Lock()
		o, ok := b.objects[key]
		s.mu.Unlock()
		if !ok {
			return errorf(http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
		}
		h := w.Header()
		h.Set("ETag", `"`+o.etag+`"`)
		h.Set("Content-Length", strconv.Itoa(len(o.data)))
		h.Set("Last-Modified", o.modified.UTC().Format(http.TimeFormat))
		if o.contentType != "" {
			h.Set("Content-Type", o.contentType)
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(o.data)
	case "CreateMultipartUpload":
		alg := strings.ToUpper(r.Header.Get("x-amz-checksum-algorithm"))
		s.mu.Lock()
		s.uploads++
		id := fmt.Sprintf("upload-%d-%d", s.uploads, time.Now().UnixNano())
		b.uploads[id] = &upload{key: key, contentType: r.Header.Get("Content-Type"), algorithm: alg, parts: map[int]*part{}}
		s.mu.Unlock()
		writeXML(w, http.StatusOK, struct {
			XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
			Bucket   string   `xml:"Bucket"`
			Key      string   `xml:"Key"`
			UploadID string   `xml:"UploadId"`
		}{Bucket: bucketName, Key: key, UploadID: id})
	case "UploadPart":
		q := r.URL.Query()
		n, err := strconv.Atoi(q.Get("partNumber"))
		if err != nil || n < 1 || n > 10000 {
			return errorf(http.StatusBadRequest, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive")
		}
		up, serr := s.upload(b, q.Get("uploadId"), key)
		if serr != nil {
			return serr
		}
		data, sums, serr := readBody(r)
		if serr != nil {
			return serr
		}
		p := &part{data: data, etag: md5hex(data)}
		if up.algorithm != "" {
			p.checksum = sums["x-amz-checksum-"+strings.ToLower(up.algorithm)]
			if p.checksum == "" {
				p.checksum = checksumOf(up.algorithm, data)
			}
		}
		s.mu.Lock()
		up.parts[n] = p
		s.mu.Unlock()
		echoChecksums(w, sums)
		w.Header().Set("ETag", `"`+p.etag+`"`)
		w.WriteHeader(http.StatusOK)
	case "CompleteMultipartUpload":
		return s.complete(w, r, b, bucketName, key)
	case "AbortMultipartUpload":
		id := r.URL.Query().Get("uploadId")
		if _, err := s.upload(b, id, key); err != nil {
			return err
		}
		s.mu.Lock()
		delete(b.uploads, id)
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}
	return nil
}

func (s *Server) upload(b *bucket, id, key string) (*upload, *s3Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	up, ok := b.uploads[id]
	if !ok || up.key != key {
		return nil, errorf(http.StatusNotFound, "NoSuchUpload", "The specified multipart upload does not exist.")
	}
	return up, nil
}

func (s *Server) complete(w http.ResponseWriter, r *http.Request, b *bucket, bucketName, key string) *s3Error {
	id := r.URL.Query().Get("uploadId")
	up, serr := s.upload(b, id, key)
	if serr != nil {
		return serr
	}
	var req struct {
		Parts []struct {
			ETag           string `xml:"ETag"`
			PartNumber     int    `xml:"PartNumber"`
			ChecksumCRC32  string `xml:"ChecksumCRC32"`
			ChecksumCRC32C string `xml:"ChecksumCRC32C"`
			ChecksumSHA1   string `xml:"ChecksumSHA1"`
			ChecksumSHA256 string `xml:"ChecksumSHA256"`
		} `xml:"Part"`
	}
	raw, serr := readAll(r.Body)
	if serr != nil {
		return serr
	}
	if err := xml.Unmarshal(raw, &req); err != nil || len(req.Parts) == 0 {
		return errorf(http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var data []byte
	sum := md5.New()
	last := 0
	for _, p := range req.Parts {
		if p.PartNumber <= last {
			return errorf(http.StatusBadRequest, "InvalidPartOrder", "The list of parts was not in ascending order.")
		}
		last = p.PartNumber
	}
	for i, p := range req.Parts {
		got, ok := up.parts[p.PartNumber]
		if !ok || strings.Trim(p.ETag, `"`) != got.etag {
			return errorf(http.StatusBadRequest, "InvalidPart", "One or more of the specified parts could not be found or the ETag did not match.")
		}
		if up.algorithm != "" {
			want := map[string]string{"CRC32": p.ChecksumCRC32, "CRC32C": p.ChecksumCRC32C, "SHA1": p.ChecksumSHA1, "SHA256": p.ChecksumSHA256}[up.algorithm]
			if want != got.checksum {
				return errorf(http.StatusBadRequest, "InvalidPart", "The checksum of part %d does not match (%s)", p.PartNumber, up.algorithm)
			}
		}
		if i < len(req.Parts)-1 && len(got.data) < MinPartSize {
			return errorf(http.StatusBadRequest, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.")
		}
		data = append(data, got.data...)
		d, _ := hex.DecodeString(got.etag)
		sum.Write(d)
	}
	etag := fmt.Sprintf("%s-%d", hex.EncodeToString(sum.Sum(nil)), len(req.Parts))
	b.objects[key] = &object{data: data, etag: etag, contentType: up.contentType, modified: s.now()}
	delete(b.uploads, id)
	writeXML(w, http.StatusOK, struct {
		XMLName  xml.Name `xml:"CompleteMultipartUploadResult"`
		Location string   `xml:"Location"`
		Bucket   string   `xml:"Bucket"`
		Key      string   `xml:"Key"`
		ETag     string   `xml:"ETag"`
	}{Location: "/" + bucketName + "/" + key, Bucket: bucketName, Key: key, ETag: `"` + etag + `"`})
	return nil
}

func readAll(r io.Reader) ([]byte, *s3Error) {
	b, err := io.ReadAll(io.LimitReader(r, maxObjectBytes+1))
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header: %v", err)
	}
	if len(b) > maxObjectBytes {
		return nil, errorf(http.StatusBadRequest, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
	}
	return b, nil
}

// readBody reads a request payload (decoding aws-chunked framing) and
// checks every integrity header against it. It returns the payload and
// the x-amz-checksum-* values that were verified.
func readBody(r *http.Request) ([]byte, map[string]string, *s3Error) {
	raw, serr := readAll(r.Body)
	if serr != nil {
		return nil, nil, serr
	}
	sums := map[string]string{}
	for name, vals := range r.Header {
		if lower := strings.ToLower(name); strings.HasPrefix(lower, "x-amz-checksum-") && lower != "x-amz-checksum-algorithm" &&
			lower != "x-amz-checksum-type" && len(vals) > 0 {
			sums[lower] = vals[0]
		}
	}
	data := raw
	payloadHash := r.Header.Get("X-Amz-Content-Sha256")
	if strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked") || strings.HasPrefix(payloadHash, "STREAMING-") {
		var trailers map[string]string
		var err error
		data, trailers, err = decodeChunked(raw)
		if err != nil {
			return nil, nil, errorf(http.StatusBadRequest, "IncompleteBody", "aws-chunked body: %v", err)
		}
		if dl := r.Header.Get("X-Amz-Decoded-Content-Length"); dl != "" && dl != strconv.Itoa(len(data)) {
			return nil, nil, errorf(http.StatusBadRequest, "IncompleteBody", "decoded length %d, header says %s", len(data), dl)
		}
		for k, v := range trailers {
			sums[k] = v
		}
		if want := r.Header.Get("X-Amz-Trailer"); want != "" && trailers[strings.ToLower(want)] == "" {
			return nil, nil, errorf(http.StatusBadRequest, "MalformedTrailerError", "the announced trailer %s is missing", want)
		}
	} else if payloadHash != "" && payloadHash != "UNSIGNED-PAYLOAD" {
		h := sha256.Sum256(data)
		if !strings.EqualFold(hex.EncodeToString(h[:]), payloadHash) {
			return nil, nil, errorf(http.StatusBadRequest, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.")
		}
	}
	if m := r.Header.Get("Content-MD5"); m != "" {
		h := md5.Sum(data)
		if base64.StdEncoding.EncodeToString(h[:]) != m {
			return nil, nil, errorf(http.StatusBadRequest, "BadDigest", "The Content-MD5 you specified did not match what we received.")
		}
	}
	for name, v := range sums {
		alg := strings.ToUpper(strings.TrimPrefix(name, "x-amz-checksum-"))
		got := checksumOf(alg, data)
		if got == "" {
			return nil, nil, errorf(http.StatusBadRequest, "InvalidRequest", "s3fake does not support checksum %s", name)
		}
		if got != v {
			return nil, nil, errorf(http.StatusBadRequest, "BadDigest", "The %s you specified did not match the calculated checksum.", name)
		}
	}
	return data, sums, nil
}

func echoChecksums(w http.ResponseWriter, sums map[string]string) {
	for k, v := range sums {
		w.Header().Set(k, v)
	}
}

// decodeChunked undoes aws-chunked framing: "<hex size>[;ext]\r\n<data>\r\n"
// chunks, a zero chunk, then "name:value\r\n" trailers and a final "\r\n".
func decodeChunked(b []byte) ([]byte, map[string]string, error) {
	br := bufio.NewReader(bytes.NewReader(b))
	var out []byte
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, nil, fmt.Errorf("chunk header: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		sizeHex, _, _ := strings.Cut(line, ";")
		size, err := strconv.ParseInt(sizeHex, 16, 64)
		if err != nil || size < 0 || size > maxObjectBytes {
			return nil, nil, fmt.Errorf("chunk size %q", line)
		}
		if size == 0 {
			break
		}
		chunk := make([]byte, size)
		if _, err := io.ReadFull(br, chunk); err != nil {
			return nil, nil, fmt.Errorf("chunk data: %w", err)
		}
		out = append(out, chunk...)
		if crlf, err := br.ReadString('\n'); err != nil || crlf != "\r\n" {
			return nil, nil, fmt.Errorf("chunk terminator")
		}
	}
	trailers := map[string]string{}
	for {
		line, err := br.ReadString('\n')
		if err == io.EOF && line == "" {
			break
		}
		if err != nil && err != io.EOF {
			return nil, nil, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, nil, fmt.Errorf("trailer %q", line)
		}
		trailers[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	return out, trailers, nil
}

func checksumOf(alg string, data []byte) string {
	var h hash.Hash
	switch alg {
	case "CRC32":
		h = crc32.NewIEEE()
	case "CRC32C":
		h = crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case "SHA1":
		h = sha1.New()
	case "SHA256":
		h = sha256.New()
	default:
		return ""
	}
	h.Write(data)
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func md5hex(b []byte) string {
	h := md5.Sum(b)
	return hex.EncodeToString(h[:])
}
