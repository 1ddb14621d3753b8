package s3fake_test

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wxpay-serverless/wxpay-serverless/internal/s3fake"
)

func crc(data string) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], crc32.ChecksumIEEE([]byte(data)))
	return base64.StdEncoding.EncodeToString(b[:])
}

func do(t *testing.T, srv *httptest.Server, method, path, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestFakeChecksIntegrity(t *testing.T) {
	fake := s3fake.New("b")
	srv := httptest.NewServer(fake)
	defer srv.Close()
	chunked := func(data, trailer string) string {
		return strings.Join([]string{
			"4", data[:4], // chunk 1
			strconvHex(len(data) - 4), data[4:],
			"0", "x-amz-checksum-crc32:" + trailer, "", ""}, "\r\n")
	}
	streaming := map[string]string{"Content-Encoding": "aws-chunked", "X-Amz-Content-Sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
		"X-Amz-Trailer": "x-amz-checksum-crc32", "X-Amz-Decoded-Content-Length": "11"}
	tests := []struct {
		name   string
		body   string
		hdr    map[string]string
		status int
		code   string
		stored string
	}{
		{"aws-chunked with a good trailer", chunked("hello world", crc("hello world")), streaming, 200, "", "hello world"},
		{"aws-chunked with a bad trailer", chunked("hello world", crc("hello")), streaming, 400, "BadDigest", ""},
		{"header checksum mismatch", "data", map[string]string{"x-amz-checksum-crc32": crc("other")}, 400, "BadDigest", ""},
		{"payload hash mismatch", "data", map[string]string{"X-Amz-Content-Sha256": strings.Repeat("0", 64)}, 400, "XAmzContentSHA256Mismatch", ""},
		{"unsigned", "data", map[string]string{"X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"}, 200, "", "data"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := "/b/k" + string(rune('a'+i))
			status, body := do(t, srv, http.MethodPut, key, tc.body, tc.hdr)
			if status != tc.status || (tc.code != "" && !strings.Contains(body, "<Code>"+tc.code+"</Code>")) {
				t.Fatalf("status %d body %s; want %d %s", status, body, tc.status, tc.code)
			}
			got, ok := fake.Object("b", key[3:])
			if (tc.stored != "") != ok || string(got) != tc.stored {
				t.Fatalf("stored %q (%v), want %q", got, ok, tc.stored)
			}
		})
	}
	if status, body := do(t, srv, http.MethodPut, "/b/k", "x", map[string]string{"Authorization": ""}); status != 403 || !strings.Contains(body, "AccessDenied") {
		t.Fatalf("unsigned request: %d %s", status, body)
	}
	if status, body := do(t, srv, http.MethodGet, "/nobucket/k", "", nil); status != 404 || !strings.Contains(body, "NoSuchBucket") {
		t.Fatalf("missing bucket: %d %s", status, body)
	}
}

func strconvHex(n int) string { return strings.ToLower(strings.TrimLeft(hex4(n), "0")) }

func hex4(n int) string {
	const digits = "0123456789abcdef"
	b := []byte{digits[n>>12&15], digits[n>>8&15], digits[n>>4&15], digits[n&15]}
	return string(b)
}

func TestFakeMultipartRules(t *testing.T) {
	fake := s3fake.New("b")
	srv := httptest.NewServer(fake)
	defer srv.Close()
	start := func() string {
		status, body := do(t, srv, http.MethodPost, "/b/big?uploads", "", nil)
		var res struct {
			UploadID string `xml:"UploadId"`
		}
		if status != 200 || xml.Unmarshal([]byte(body), &res) != nil || res.UploadID == "" {
			t.Fatalf("create: %d %s", status, body)
		}
		return res.UploadID
	}
	part := func(id string, n int, data string) string {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/b/big?partNumber="+string(rune('0'+n))+"&uploadId="+id, strings.NewReader(data))
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("part %d: %v %v", n, err, resp.Status)
		}
		resp.Body.Close()
		return resp.Header.Get("ETag")
	}
	complete := func(id string, parts ...[2]string) (int, string) {
		x := "<CompleteMultipartUpload>"
		for _, p := range parts {
			x += "<Part><ETag>" + p[1] + "</ETag><PartNumber>" + p[0] + "</PartNumber></Part>"
		}
		return do(t, srv, http.MethodPost, "/b/big?uploadId="+id, x+"</CompleteMultipartUpload>", nil)
	}
	id := start()
	e1, e2 := part(id, 1, "small"), part(id, 2, "tail")
	if status, body := complete(id, [2]string{"1", e1}, [2]string{"2", e2}); status != 400 || !strings.Contains(body, "EntityTooSmall") {
		t.Fatalf("small first part: %d %s", status, body)
	}
	if status, body := complete(id, [2]string{"2", e2}, [2]string{"1", e1}); status != 400 || !strings.Contains(body, "InvalidPartOrder") {
		t.Fatalf("descending parts: %d %s", status, body)
	}
	if status, body := complete(id, [2]string{"1", `"0000"`}); status != 400 || !strings.Contains(body, "InvalidPart") {
		t.Fatalf("wrong ETag: %d %s", status, body)
	}
	if status, _ := complete(id, [2]string{"2", e2}); status != 200 {
		t.Fatalf("single (last) part: %d", status)
	}
	if got, _ := fake.Object("b", "big"); string(got) != "tail" {
		t.Fatalf("object %q", got)
	}
	if status, body := do(t, srv, http.MethodDelete, "/b/big?uploadId="+id, "", nil); status != 404 || !strings.Contains(body, "NoSuchUpload") {
		t.Fatalf("abort after complete: %d %s", status, body)
	}
}
