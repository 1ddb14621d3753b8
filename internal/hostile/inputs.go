package hostile

import (
	"strings"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
)

// Where says which part of a request a hostile input replaces.
type Where string

// The parts of a request.
const (
	InBody  Where = "body"  // the whole body (raw bytes)
	InPath  Where = "path"  // one path parameter (the value API Gateway hands over)
	InQuery Where = "query" // one query parameter the route reads
	InField Where = "field" // one field of the route's valid template body (a JSON value)
)

// Kind is what a template field holds; field inputs apply to their kind.
type Kind string

// Field kinds.
const (
	KindAmount Kind = "amount" // integer fen
	KindID     Kind = "id"     // an identifier or request number
	KindText   Kind = "text"   // free text WeChat Pay shows or stores
	KindTime   Kind = "time"   // a time string (RFC 3339 or yyyyMMddHHmmss)
)

// Input is one row of the hostile table.
type Input struct {
	Name  string
	Where Where
	Kinds []Kind // InField: the field kinds it applies to
	// Raw is the body (InBody); Value the path or query value; JSON the
	// field value as JSON text (InField).
	Raw   []byte
	Value string
	JSON  string
	// Base64 sends the body base64-encoded; RawBase64 sends Raw verbatim as
	// an event body flagged base64 (so it may be invalid base64).
	Base64, RawBase64 bool
	// Status, when set, is the only acceptable status (e.g. 413 for bodies
	// over the limit); otherwise any 4xx.
	Status int
	Why    string
}

func repeat(s string, n int) string { return strings.Repeat(s, n) }

// Inputs is the hostile table. Every row has a test per route it applies
// to (TestHostileInputs) and seeds the fuzz targets.
func Inputs() []Input {
	huge := `{"description":"` + repeat("A", 1<<20) + `"}`
	deepArray := repeat("[", 100_000) + repeat("]", 100_000)
	deepObject := repeat(`{"a":`, 10_000) + "1" + repeat("}", 10_000)
	deepValid := repeat(`{"amount":`, 5_000) + "1" + repeat("}", 5_000)
	long := repeat("A", 4096)
	in := []Input{
		// Whole bodies.
		{Name: "body/huge-1MiB", Where: InBody, Raw: []byte(huge), Status: 413, Why: "over MaxBodyBytes: 413 before any decoding"},
		{Name: "body/huge-whitespace", Where: InBody, Raw: []byte(repeat(" ", apigw.MaxBodyBytes+1) + "{}"), Status: 413, Why: "padding counts"},
		{Name: "body/huge-base64", Where: InBody, Raw: []byte(repeat("x", apigw.MaxBodyBytes+10)), Base64: true, Status: 413, Why: "decoded size counts"},
		{Name: "body/at-limit-garbage", Where: InBody, Raw: []byte(repeat("x", apigw.MaxBodyBytes)), Why: "the largest accepted size, not JSON"},
		{Name: "body/deep-array", Where: InBody, Raw: []byte(deepArray), Why: "100k nested arrays: decoder depth limit"},
		{Name: "body/deep-object", Where: InBody, Raw: []byte(deepObject), Why: "10k nested objects with an unknown field"},
		{Name: "body/deep-amount", Where: InBody, Raw: []byte(deepValid), Why: "a known field name nested 5k deep"},
		{Name: "body/array", Where: InBody, Raw: []byte(`[]`), Why: "wrong top-level type"},
		{Name: "body/string", Where: InBody, Raw: []byte(`"hello"`), Why: "wrong top-level type"},
		{Name: "body/number", Where: InBody, Raw: []byte(`12345`), Why: "wrong top-level type"},
		{Name: "body/bool", Where: InBody, Raw: []byte(`true`), Why: "wrong top-level type"},
		{Name: "body/null", Where: InBody, Raw: []byte(`null`), Why: "JSON null: an empty request (harmless where the body is optional)"},
		{Name: "body/truncated", Where: InBody, Raw: []byte(`{"out_trade_no":"A`), Why: "malformed JSON"},
		{Name: "body/trailing-garbage", Where: InBody, Raw: []byte(`{} xyz`), Why: "data after the value"},
		{Name: "body/two-values", Where: InBody, Raw: []byte(`{}{}`), Why: "two JSON values"},
		{Name: "body/comments", Where: InBody, Raw: []byte(`{/* c */}`), Why: "not JSON"},
		{Name: "body/bom", Where: InBody, Raw: []byte("\xEF\xBB\xBF{}"), Why: "UTF-8 byte order mark"},
		{Name: "body/invalid-utf8", Where: InBody, Raw: []byte("{\"reason\":\"\xff\xfe\xfd\"}"), Base64: true, Why: "invalid UTF-8 (the front door base64-encodes it)"},
		{Name: "body/invalid-base64", Where: InBody, Raw: []byte("%%%not base64%%%"), RawBase64: true, Why: "API Gateway flag with a body that is not base64"},
		{Name: "body/proto-pollution", Where: InBody, Raw: []byte(`{"__proto__":{"admin":true},"constructor":{"prototype":{}}}`), Why: "JSON injection: unknown fields"},
		{Name: "body/nosql-operator", Where: InBody, Raw: []byte(`{"$where":"1==1","out_trade_no":{"$ne":null}}`), Why: "NoSQL operator injection"},
		{Name: "body/sql-injection", Where: InBody, Raw: []byte(`{"x":"'; DROP TABLE wxpay;--"}`), Why: "SQL injection in an unknown field"},
		{Name: "body/nul-bytes", Where: InBody, Raw: []byte("{\"\\u0000\":\"\\u0000\"}"), Why: "NUL in names and values"},
		{Name: "body/duplicate-keys", Where: InBody, Raw: []byte(`{"stock_id":"1","stock_id":{"$gt":""}}`), Why: "the last duplicate key wins in Go; it must still be validated"},
		{Name: "body/form-encoded", Where: InBody, Raw: []byte(`out_trade_no=A&amount=1`), Why: "wrong content type"},
		{Name: "body/xml", Where: InBody, Raw: []byte(`<xml><out_trade_no>A</out_trade_no></xml>`), Why: "APIv2-style XML"},
		{Name: "body/huge-number", Where: InBody, Raw: []byte(`{"amount":1e999999}`), Why: "number beyond float64"},

		// Path parameters (one at a time; the others keep their fixture values).
		{Name: "path/dotdot", Where: InPath, Value: "..", Why: "path traversal segment"},
		{Name: "path/traversal", Where: InPath, Value: "../../etc/passwd", Why: "path traversal with slashes (what a decoded %2F gives)"},
		{Name: "path/traversal-encoded", Where: InPath, Value: "..%2F..%2Fetc%2Fpasswd", Why: "still-encoded traversal"},
		{Name: "path/traversal-backslash", Where: InPath, Value: `..\..\windows\win.ini`, Why: "Windows traversal"},
		{Name: "path/sql", Where: InPath, Value: "1' OR '1'='1", Why: "SQL injection"},
		{Name: "path/sql-stacked", Where: InPath, Value: "1; DROP TABLE wxpay--", Why: "SQL injection"},
		{Name: "path/nosql", Where: InPath, Value: `{"$ne":null}`, Why: "NoSQL/JSON injection"},
		{Name: "path/key-separator", Where: InPath, Value: "A#STATE", Why: "the table's key separator: must not address another item"},
		{Name: "path/emoji", Where: InPath, Value: "ORDER😀1", Why: "4-byte UTF-8"},
		{Name: "path/rtl-zero-width", Where: InPath, Value: "A\u202eB\u200bC", Why: "bidi override and zero-width characters"},
		{Name: "path/fullwidth-digits", Where: InPath, Value: "１２３４５６", Why: "digits that are not ASCII"},
		{Name: "path/nul", Where: InPath, Value: "A\x00B", Why: "NUL"},
		{Name: "path/crlf", Where: InPath, Value: "A\r\nX-Injected: 1", Why: "header injection"},
		{Name: "path/long", Where: InPath, Value: long, Why: "4 KiB: over DynamoDB's 2 KiB partition key"},
		{Name: "path/space", Where: InPath, Value: " ", Why: "blank"},
		{Name: "path/negative", Where: InPath, Value: "-1", Why: "negative number"},
		{Name: "path/overflow-digits", Where: InPath, Value: "99999999999999999999999999999999999999", Why: "digits beyond any integer"},
		{Name: "path/format-string", Where: InPath, Value: "%s%n%x%d", Why: "format verbs"},
		{Name: "path/script", Where: InPath, Value: "<script>alert(1)</script>", Why: "markup"},

		// Query parameters the route reads.
		{Name: "query/word", Where: InQuery, Value: "maybe", Why: "not a value the parameter takes"},
		{Name: "query/negative", Where: InQuery, Value: "-1", Why: "negative"},
		{Name: "query/overflow", Where: InQuery, Value: "99999999999999999999", Why: "beyond int64"},
		{Name: "query/float", Where: InQuery, Value: "1.5", Why: "fraction"},
		{Name: "query/sql", Where: InQuery, Value: "' OR 1=1--", Why: "SQL injection"},
		{Name: "query/emoji", Where: InQuery, Value: "😀", Why: "4-byte UTF-8"},
		{Name: "query/long", Where: InQuery, Value: long, Why: "4 KiB"},
		{Name: "query/nul", Where: InQuery, Value: "\x00", Why: "NUL"},

		// Field values inside an otherwise valid body.
		{Name: "field/negative", Where: InField, Kinds: []Kind{KindAmount}, JSON: `-1`, Why: "negative amount"},
		{Name: "field/min-int64", Where: InField, Kinds: []Kind{KindAmount}, JSON: `-9223372036854775808`, Why: "most negative int64"},
		{Name: "field/max-int64", Where: InField, Kinds: []Kind{KindAmount}, JSON: `9223372036854775807`, Why: "largest int64: sums overflow"},
		{Name: "field/over-int64", Where: InField, Kinds: []Kind{KindAmount}, JSON: `9223372036854775808`, Why: "beyond int64"},
		{Name: "field/huge-float", Where: InField, Kinds: []Kind{KindAmount}, JSON: `1e400`, Why: "beyond float64"},
		{Name: "field/fraction", Where: InField, Kinds: []Kind{KindAmount}, JSON: `5.51`, Why: "yuan instead of fen"},
		{Name: "field/exponent", Where: InField, Kinds: []Kind{KindAmount}, JSON: `1e2`, Why: "exponent notation"},
		{Name: "field/amount-string", Where: InField, Kinds: []Kind{KindAmount}, JSON: `"100"`, Why: "wrong type"},
		{Name: "field/amount-bool", Where: InField, Kinds: []Kind{KindAmount}, JSON: `true`, Why: "wrong type"},
		{Name: "field/object", Where: InField, Kinds: []Kind{KindAmount, KindID, KindText, KindTime}, JSON: `{"$ne":null}`, Why: "NoSQL operator object: wrong type"},
		{Name: "field/array", Where: InField, Kinds: []Kind{KindAmount, KindID, KindText, KindTime}, JSON: `["A"]`, Why: "wrong type"},
		{Name: "field/number", Where: InField, Kinds: []Kind{KindID, KindText, KindTime}, JSON: `12345`, Why: "wrong type"},
		{Name: "field/id-empty", Where: InField, Kinds: []Kind{KindID}, JSON: `" "`, Why: "blank identifier"},
		{Name: "field/id-traversal", Where: InField, Kinds: []Kind{KindID}, JSON: `"../../etc/passwd"`, Why: "path traversal"},
		{Name: "field/id-sql", Where: InField, Kinds: []Kind{KindID}, JSON: `"1' OR '1'='1"`, Why: "SQL injection"},
		{Name: "field/id-json-string", Where: InField, Kinds: []Kind{KindID}, JSON: `"{\"$ne\":null}"`, Why: "JSON injection in a string"},
		{Name: "field/id-key-separator", Where: InField, Kinds: []Kind{KindID}, JSON: `"A#STATE"`, Why: "the table's key separator"},
		{Name: "field/id-emoji", Where: InField, Kinds: []Kind{KindID}, JSON: `"ORDER😀1"`, Why: "4-byte UTF-8"},
		{Name: "field/id-nul", Where: InField, Kinds: []Kind{KindID}, JSON: `"A\u0000B"`, Why: "NUL"},
		{Name: "field/id-crlf", Where: InField, Kinds: []Kind{KindID}, JSON: `"A\r\nB"`, Why: "CRLF"},
		{Name: "field/id-long", Where: InField, Kinds: []Kind{KindID}, JSON: `"` + long + `"`, Why: "4 KiB"},
		{Name: "field/text-emoji", Where: InField, Kinds: []Kind{KindText}, JSON: `"充电宝🔋租借"`, Why: "4-byte emoji: WeChat Pay rejects it, so must we, before calling"},
		{Name: "field/text-emoji-only", Where: InField, Kinds: []Kind{KindText}, JSON: `"😀"`, Why: "a single 4-byte character (length 1 in runes)"},
		{Name: "field/text-huge", Where: InField, Kinds: []Kind{KindText}, JSON: `"` + repeat("字", 20_000) + `"`, Why: "60 KB of text"},
		{Name: "field/text-zalgo", Where: InField, Kinds: []Kind{KindText}, JSON: `"e` + repeat("\u0301", 300) + `"`, Why: "one visible character, 301 runes"},
		{Name: "field/time-invalid", Where: InField, Kinds: []Kind{KindTime}, JSON: `"2026-13-45T99:99:99+08:00"`, Why: "no such date"},
		{Name: "field/time-no-zone", Where: InField, Kinds: []Kind{KindTime}, JSON: `"2026-11-23T10:00:00"`, Why: "no zone"},
		{Name: "field/time-unix", Where: InField, Kinds: []Kind{KindTime}, JSON: `"1795399200"`, Why: "unix seconds"},
		{Name: "field/time-words", Where: InField, Kinds: []Kind{KindTime}, JSON: `"yesterday"`, Why: "not a time"},
	}
	return in
}
