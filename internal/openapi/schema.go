package openapi

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Violation is one place where a value does not match its schema.
type Violation struct {
	// Path is the JSON path of the offending value: "$" for the whole
	// document, "$.amount.total", "$.items[2].name".
	Path string
	// Message says which rule failed and how.
	Message string
}

func (v Violation) String() string { return v.Path + ": " + v.Message }

// Assertion keywords the validator evaluates. A schema using any keyword
// outside these and the annotations below is rejected by Check, so the
// document can never rely on a rule the tests silently skip.
var assertionKeywords = map[string]bool{
	"$ref": true, "type": true, "properties": true, "required": true, "additionalProperties": true,
	"items": true, "enum": true, "const": true, "minimum": true, "maximum": true,
	"exclusiveMinimum": true, "exclusiveMaximum": true, "minLength": true, "maxLength": true,
	"pattern": true, "minItems": true, "maxItems": true, "oneOf": true, "anyOf": true, "allOf": true,
}

// annotationKeywords carry no assertion (format is an annotation in
// OpenAPI 3.1 by default: times and numbers are constrained with pattern).
var annotationKeywords = map[string]bool{
	"title": true, "description": true, "examples": true, "default": true, "format": true,
	"deprecated": true, "readOnly": true, "writeOnly": true, "$comment": true,
}

// validTypes are JSON Schema's type names.
var validTypes = map[string]bool{
	"null": true, "boolean": true, "object": true, "array": true, "number": true, "integer": true, "string": true,
}

// validator evaluates schemas of one document; refs resolve against root.
type validator struct {
	root  map[string]any
	regex map[string]*regexp.Regexp
	depth int
}

// maxDepth bounds $ref expansion (a document with a reference cycle that
// never consumes input would otherwise recurse forever).
const maxDepth = 200

func newValidator(root map[string]any) *validator {
	return &validator{root: root, regex: map[string]*regexp.Regexp{}}
}

// validate checks v (a value as encoding/json decodes it with UseNumber, or
// as the YAML loader builds it) against schema and appends violations.
func (x *validator) validate(schema any, v any, path string, out *[]Violation) {
	x.depth++
	defer func() { x.depth-- }()
	if x.depth > maxDepth {
		*out = append(*out, Violation{path, "schema nesting too deep (reference cycle?)"})
		return
	}
	switch s := schema.(type) {
	case bool:
		if !s {
			*out = append(*out, Violation{path, "no value is allowed here (schema false)"})
		}
		return
	case map[string]any:
		x.validateObjectSchema(s, v, path, out)
	default:
		*out = append(*out, Violation{path, fmt.Sprintf("invalid schema %T", schema)})
	}
}

func (x *validator) validateObjectSchema(s map[string]any, v any, path string, out *[]Violation) {
	if ref, ok := s["$ref"].(string); ok {
		target, err := resolvePointer(x.root, ref)
		if err != nil {
			*out = append(*out, Violation{path, err.Error()})
			return
		}
		x.validate(target, v, path, out)
	}
	if t, ok := s["type"]; ok && !typeMatches(t, v) {
		*out = append(*out, Violation{path, fmt.Sprintf("type is %s, want %s", jsonType(v), typeText(t))})
		return // the remaining keywords assume the right type
	}
	if e, ok := s["enum"].([]any); ok && !containsValue(e, v) {
		*out = append(*out, Violation{path, fmt.Sprintf("%s is not one of %s", render(v), render(e))})
	}
	if c, ok := s["const"]; ok && !equalValues(c, v) {
		*out = append(*out, Violation{path, fmt.Sprintf("%s is not %s", render(v), render(c))})
	}
	switch val := v.(type) {
	case string:
		x.validateString(s, val, path, out)
	case map[string]any:
		x.validateObject(s, val, path, out)
	case []any:
		x.validateArray(s, val, path, out)
	default:
		if n, ok := toFloat(v); ok {
			validateNumber(s, n, path, out)
		}
	}
	for _, sub := range list(s["allOf"]) {
		x.validate(sub, v, path, out)
	}
	if alts := list(s["anyOf"]); alts != nil {
		if n, first := x.matching(alts, v, path); n == 0 {
			*out = append(*out, Violation{path, "matches none of anyOf: " + first})
		}
	}
	if alts := list(s["oneOf"]); alts != nil {
		switch n, first := x.matching(alts, v, path); {
		case n == 0:
			*out = append(*out, Violation{path, "matches none of oneOf: " + first})
		case n > 1:
			*out = append(*out, Violation{path, fmt.Sprintf("matches %d of oneOf, want exactly 1", n)})
		}
	}
}

// matching counts the alternatives v satisfies; first describes the first
// violation of each failed alternative, for the message.
func (x *validator) matching(alts []any, v any, path string) (int, string) {
	n := 0
	var why []string
	for i, alt := range alts {
		var sub []Violation
		x.validate(alt, v, path, &sub)
		if len(sub) == 0 {
			n++
			continue
		}
		why = append(why, fmt.Sprintf("[%d] %s", i, sub[0]))
	}
	return n, strings.Join(why, "; ")
}

func (x *validator) validateString(s map[string]any, v, path string, out *[]Violation) {
	n := utf8.RuneCountInString(v)
	if min, ok := intKeyword(s, "minLength"); ok && n < min {
		*out = append(*out, Violation{path, fmt.Sprintf("%q has %d characters, want at least %d", v, n, min)})
	}
	if max, ok := intKeyword(s, "maxLength"); ok && n > max {
		*out = append(*out, Violation{path, fmt.Sprintf("%q has %d characters, want at most %d", v, n, max)})
	}
	if p, ok := s["pattern"].(string); ok {
		re, err := x.compile(p)
		if err != nil {
			*out = append(*out, Violation{path, err.Error()})
		} else if !re.MatchString(v) {
			*out = append(*out, Violation{path, fmt.Sprintf("%q does not match pattern %s", v, p)})
		}
	}
}

func (x *validator) compile(p string) (*regexp.Regexp, error) {
	if re, ok := x.regex[p]; ok {
		return re, nil
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, fmt.Errorf("pattern %q does not compile: %w", p, err)
	}
	x.regex[p] = re
	return re, nil
}

func validateNumber(s map[string]any, n float64, path string, out *[]Violation) {
	if m, ok := toFloat(s["minimum"]); ok && n < m {
		*out = append(*out, Violation{path, fmt.Sprintf("%s is below the minimum %s", num(n), num(m))})
	}
	if m, ok := toFloat(s["maximum"]); ok && n > m {
		*out = append(*out, Violation{path, fmt.Sprintf("%s is above the maximum %s", num(n), num(m))})
	}
	if m, ok := toFloat(s["exclusiveMinimum"]); ok && n <= m {
		*out = append(*out, Violation{path, fmt.Sprintf("%s is not above %s", num(n), num(m))})
	}
	if m, ok := toFloat(s["exclusiveMaximum"]); ok && n >= m {
		*out = append(*out, Violation{path, fmt.Sprintf("%s is not below %s", num(n), num(m))})
	}
}

func (x *validator) validateObject(s map[string]any, v map[string]any, path string, out *[]Violation) {
	props, _ := s["properties"].(map[string]any)
	for _, name := range list(s["required"]) {
		key, _ := name.(string)
		if _, ok := v[key]; !ok {
			*out = append(*out, Violation{path, fmt.Sprintf("required property %q is missing", key)})
		}
	}
	for _, key := range sortedKeys(v) {
		sub := childPath(path, key)
		if ps, ok := props[key]; ok {
			x.validate(ps, v[key], sub, out)
			continue
		}
		switch ap := s["additionalProperties"].(type) {
		case bool:
			if !ap {
				*out = append(*out, Violation{sub, "property is not allowed (additionalProperties: false)"})
			}
		case map[string]any:
			x.validate(ap, v[key], sub, out)
		}
	}
}

func (x *validator) validateArray(s map[string]any, v []any, path string, out *[]Violation) {
	if min, ok := intKeyword(s, "minItems"); ok && len(v) < min {
		*out = append(*out, Violation{path, fmt.Sprintf("%d items, want at least %d", len(v), min)})
	}
	if max, ok := intKeyword(s, "maxItems"); ok && len(v) > max {
		*out = append(*out, Violation{path, fmt.Sprintf("%d items, want at most %d", len(v), max)})
	}
	if items, ok := s["items"]; ok {
		for i, e := range v {
			x.validate(items, e, path+"["+strconv.Itoa(i)+"]", out)
		}
	}
}

// childPath appends a property to a JSON path, bracket-quoting names that
// are not plain identifiers.
func childPath(path, key string) string {
	plain := key != ""
	for i, r := range key {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			plain = false
			break
		}
	}
	if plain {
		return path + "." + key
	}
	return path + "[" + strconv.Quote(key) + "]"
}

// jsonType names the JSON type of a decoded value ("integer" for whole
// numbers).
func jsonType(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case json.Number:
		if _, err := t.Int64(); err == nil {
			return "integer"
		}
		if f, err := t.Float64(); err == nil && f == math.Trunc(f) {
			return "integer"
		}
		return "number"
	}
	if f, ok := toFloat(v); ok {
		if f == math.Trunc(f) && !math.IsInf(f, 0) {
			return "integer"
		}
		return "number"
	}
	return fmt.Sprintf("unknown (%T)", v)
}

func typeMatches(t any, v any) bool {
	got := jsonType(v)
	match := func(want string) bool { return want == got || (want == "number" && got == "integer") }
	switch tt := t.(type) {
	case string:
		return match(tt)
	case []any:
		for _, e := range tt {
			if s, ok := e.(string); ok && match(s) {
				return true
			}
		}
	}
	return false
}

func typeText(t any) string {
	if s, ok := t.(string); ok {
		return s
	}
	var names []string
	for _, e := range list(t) {
		names = append(names, fmt.Sprint(e))
	}
	return strings.Join(names, " or ")
}

// toFloat reads a number of any of the representations the decoders
// produce.
func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case uint64:
		return float64(n), true
	}
	return 0, false
}

func intKeyword(s map[string]any, name string) (int, bool) {
	f, ok := toFloat(s[name])
	return int(f), ok
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// equalValues compares two decoded JSON values, numbers by value.
func equalValues(a, b any) bool {
	fa, aNum := toFloat(a)
	fb, bNum := toFloat(b)
	if aNum || bNum {
		return aNum && bNum && fa == fb
	}
	am, aMap := a.(map[string]any)
	bm, bMap := b.(map[string]any)
	if aMap || bMap {
		if !aMap || !bMap || len(am) != len(bm) {
			return false
		}
		for k, av := range am {
			bv, ok := bm[k]
			if !ok || !equalValues(av, bv) {
				return false
			}
		}
		return true
	}
	al, aList := a.([]any)
	bl, bList := b.([]any)
	if aList || bList {
		if !aList || !bList || len(al) != len(bl) {
			return false
		}
		for i := range al {
			if !equalValues(al[i], bl[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

func containsValue(values []any, v any) bool {
	for _, e := range values {
		if equalValues(e, v) {
			return true
		}
	}
	return false
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// render is a short JSON rendering of a value for messages.
func render(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 120 {
		return string(b[:117]) + "..."
	}
	return string(b)
}

// resolvePointer resolves a local reference "#/a/b" (JSON Pointer escaping
// ~0 and ~1) against root.
func resolvePointer(root map[string]any, ref string) (any, error) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, fmt.Errorf("reference %q is not local (only #/... is supported)", ref)
	}
	var cur any = root
	for _, tok := range strings.Split(ref[2:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("reference %q does not resolve", ref)
		}
		if cur, ok = m[tok]; !ok {
			return nil, fmt.Errorf("reference %q does not resolve", ref)
		}
	}
	return cur, nil
}
