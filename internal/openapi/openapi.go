// Package openapi loads the project's OpenAPI 3.1 document (openapi.yaml at
// the repository root) and checks requests and responses against it with a
// small JSON Schema validator.
//
// The validator implements the subset of JSON Schema 2020-12 the document
// uses: type (one name or a list, so ["string", "null"] is nullable),
// properties, required, additionalProperties, items, enum, const,
// minimum/maximum, exclusiveMinimum/exclusiveMaximum, minLength/maxLength
// (in characters), pattern (Go RE2 syntax, unanchored as in JSON Schema),
// minItems/maxItems, oneOf/anyOf/allOf and local $ref. Check rejects a
// document that uses any other assertion keyword, so nothing in it goes
// unchecked.
//
// The tests keep the document honest in two directions: its operations must
// be exactly the routes of template.yaml and of the Go route tables (same
// method, path and scope), and every response the end-to-end tests receive
// must match the schema of its operation and status (CheckExchange).
package openapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ErrDocument classifies every problem with the document's content.
var ErrDocument = errors.New("openapi: invalid document")

// ErrMismatch classifies a request or response that does not match the
// document (*MismatchError carries the details).
var ErrMismatch = errors.New("openapi: exchange does not match the document")

// SecurityScheme is the name of the JWT bearer scheme in
// components.securitySchemes; operations list their scope under it.
const SecurityScheme = "jwt"

// Methods an operation may use, in the order Operations lists them.
var methods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// Document is a parsed OpenAPI document.
type Document struct {
	// Raw is the whole document as JSON-compatible values.
	Raw map[string]any
	ops []Operation
}

// Operation is one method of one path.
type Operation struct {
	Method string // upper case
	Path   string // path template, e.g. /payments/orders/{out_trade_no}
	ID     string // operationId
	// Public is true when the operation sets security: [] (no token).
	Public bool
	// Scopes are the scopes listed under SecurityScheme (nil when public).
	Scopes []string
	// Raw is the operation object.
	Raw map[string]any
}

// Key is "METHOD /path", the API Gateway route key.
func (o Operation) Key() string { return o.Method + " " + o.Path }

// Load reads and parses a document.
func Load(path string) (*Document, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("openapi: read %s: %w", path, err)
	}
	d, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// Parse parses a YAML (or JSON) document and indexes its operations.
func Parse(data []byte) (*Document, error) {
	var node yaml.Node
	if err := yaml.Unmarshal(data, &node); err != nil {
		return nil, fmt.Errorf("%w: YAML: %w", ErrDocument, err)
	}
	if len(node.Content) == 0 {
		return nil, fmt.Errorf("%w: empty document", ErrDocument)
	}
	v, err := convert(node.Content[0])
	if err != nil {
		return nil, err
	}
	root, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: the top level is not a mapping", ErrDocument)
	}
	d := &Document{Raw: root}
	paths, _ := root["paths"].(map[string]any)
	for _, p := range sortedKeys(paths) {
		item, ok := paths[p].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: path %s is not a mapping", ErrDocument, p)
		}
		for _, m := range methods {
			raw, ok := item[m]
			if !ok {
				continue
			}
			opm, ok := raw.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%w: %s %s is not a mapping", ErrDocument, m, p)
			}
			op := Operation{Method: strings.ToUpper(m), Path: p, Raw: opm}
			op.ID, _ = opm["operationId"].(string)
			op.Public, op.Scopes = security(opm["security"])
			d.ops = append(d.ops, op)
		}
	}
	return d, nil
}

// security reads an operation's security: [] is public; otherwise the
// scopes of the JWT scheme.
func security(v any) (public bool, scopes []string) {
	reqs, ok := v.([]any)
	if !ok {
		return false, nil
	}
	if len(reqs) == 0 {
		return true, nil
	}
	for _, r := range reqs {
		m, _ := r.(map[string]any)
		for _, s := range list(m[SecurityScheme]) {
			if str, ok := s.(string); ok {
				scopes = append(scopes, str)
			}
		}
	}
	return false, scopes
}

// convert turns a YAML node into map[string]any, []any, string, int64,
// float64, bool or nil. Mapping keys are taken as written (a status code 200
// becomes "200"); duplicate keys are an error; merge keys are resolved.
func convert(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.AliasNode:
		return convert(n.Alias)
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!int":
			i, err := strconv.ParseInt(n.Value, 0, 64)
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: integer %q: %w", ErrDocument, n.Line, n.Value, err)
			}
			return i, nil
		case "!!float", "!!bool", "!!null":
			var v any
			if err := n.Decode(&v); err != nil {
				return nil, fmt.Errorf("%w: line %d: %w", ErrDocument, n.Line, err)
			}
			return v, nil
		}
		return n.Value, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := convert(c)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		var merges []*yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("%w: line %d: mapping keys must be scalars", ErrDocument, k.Line)
			}
			if k.ShortTag() == "!!merge" {
				merges = append(merges, n.Content[i+1])
				continue
			}
			if _, dup := out[k.Value]; dup {
				return nil, fmt.Errorf("%w: line %d: duplicate key %q", ErrDocument, k.Line, k.Value)
			}
			v, err := convert(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			out[k.Value] = v
		}
		// Merge keys (<<: *anchor) fill only the keys not set explicitly.
		for _, m := range merges {
			v, err := convert(m)
			if err != nil {
				return nil, err
			}
			sources := list(v)
			if src, ok := v.(map[string]any); ok {
				sources = []any{src}
			}
			for _, src := range sources {
				sm, ok := src.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("%w: line %d: a merge key needs a mapping", ErrDocument, m.Line)
				}
				for k, v := range sm {
					if _, set := out[k]; !set {
						out[k] = v
					}
				}
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: line %d: unexpected YAML node kind %d", ErrDocument, n.Line, n.Kind)
}

// Operations lists the operations sorted by path, then method order.
func (d *Document) Operations() []Operation { return append([]Operation(nil), d.ops...) }

// Operation finds the operation of a method and a concrete request path
// (query string ignored) and returns the path parameters. When several
// templates match, the one with the most literal segments wins, as in API
// Gateway.
func (d *Document) Operation(method, path string) (Operation, map[string]string, bool) {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	method = strings.ToUpper(method)
	best, bestLiterals := -1, -1
	var bestParams map[string]string
	for i, op := range d.ops {
		if op.Method != method {
			continue
		}
		params, ok := matchPath(op.Path, path)
		if !ok {
			continue
		}
		if lit := strings.Count(op.Path, "/") - len(params); lit > bestLiterals {
			best, bestLiterals, bestParams = i, lit, params
		}
	}
	if best < 0 {
		return Operation{}, nil, false
	}
	return d.ops[best], bestParams, true
}

// matchPath matches a concrete path against a template with {name}
// segments.
func matchPath(template, path string) (map[string]string, bool) {
	ts := strings.Split(strings.Trim(template, "/"), "/")
	ps := strings.Split(strings.Trim(path, "/"), "/")
	if len(ts) != len(ps) {
		return nil, false
	}
	params := map[string]string{}
	for i, t := range ts {
		if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}") {
			if ps[i] == "" {
				return nil, false
			}
			v, err := url.PathUnescape(ps[i])
			if err != nil {
				v = ps[i]
			}
			params[t[1:len(t)-1]] = v
			continue
		}
		if t != ps[i] {
			return nil, false
		}
	}
	return params, true
}

// resolve follows $ref chains of non-schema objects (responses,
// parameters, request bodies).
func (d *Document) resolve(v any) (map[string]any, error) {
	for i := 0; i < 10; i++ {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: %T is not an object", ErrDocument, v)
		}
		ref, isRef := m["$ref"].(string)
		if !isRef {
			return m, nil
		}
		next, err := resolvePointer(d.Raw, ref)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrDocument, err)
		}
		v = next
	}
	return nil, fmt.Errorf("%w: $ref chain too long", ErrDocument)
}

// Response returns the response object of a status: the exact code, else
// its range ("4XX"), else "default". The key found is returned too.
func (d *Document) Response(op Operation, status int) (map[string]any, string, error) {
	responses, _ := op.Raw["responses"].(map[string]any)
	code := strconv.Itoa(status)
	for _, key := range []string{code, code[:1] + "XX", "default"} {
		if r, ok := responses[key]; ok {
			m, err := d.resolve(r)
			return m, key, err
		}
	}
	return nil, "", nil
}

// jsonSchema returns the application/json schema of a response or request
// body object (nil when it has no content).
func jsonSchema(obj map[string]any) (any, bool) {
	content, _ := obj["content"].(map[string]any)
	if len(content) == 0 {
		return nil, false
	}
	media, _ := content["application/json"].(map[string]any)
	if media == nil {
		return nil, true // content of another type: the caller reports it
	}
	return media["schema"], true
}

// Validate checks a decoded value against a schema of the document.
func (d *Document) Validate(schema any, v any) []Violation {
	var out []Violation
	newValidator(d.Raw).validate(schema, v, "$", &out)
	return out
}

// ValidateJSON decodes data (numbers kept exact) and validates it.
func (d *Document) ValidateJSON(schema any, data []byte) []Violation {
	v, err := decodeJSON(data)
	if err != nil {
		return []Violation{{"$", err.Error()}}
	}
	return d.Validate(schema, v)
}

func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("body is not JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("body has data after the JSON value")
	}
	return v, nil
}

// Exchange is one HTTP request and its response as a client saw them.
type Exchange struct {
	Method string
	Path   string // as requested, query string allowed
	// RequestBody is the body sent (nil for none).
	RequestBody []byte
	Status      int
	Header      http.Header
	Body        []byte
}

// MismatchError lists what in an exchange does not match the document.
type MismatchError struct {
	Exchange   string // "POST /payments/orders -> 400"
	Operation  string // "POST /payments/orders (createPaymentOrder)"; "" when none matched
	Violations []Violation
}

func (e *MismatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s does not match openapi.yaml", e.Exchange)
	if e.Operation != "" {
		fmt.Fprintf(&b, " (operation %s)", e.Operation)
	}
	for _, v := range e.Violations {
		b.WriteString("\n\t")
		b.WriteString(v.String())
	}
	return b.String()
}

// Is makes errors.Is(err, ErrMismatch) true.
func (e *MismatchError) Is(target error) bool { return target == ErrMismatch }

// CheckExchange validates an exchange against the document:
//   - a request that matches no operation must have been answered 404 with
//     the error schema (the gateway's "no route"); anything else means the
//     route is missing from the document;
//   - the status must be documented (exact code, range or default);
//   - a response documented without content must have an empty body, one
//     with JSON content a body of content-type application/json that
//     matches the schema, and headers marked required must be present;
//   - a 2xx exchange's request must match the operation's path parameter
//     schemas and request body schema (the handler accepted it, so the
//     document must describe it as acceptable).
func (d *Document) CheckExchange(x Exchange) error {
	e := &MismatchError{Exchange: fmt.Sprintf("%s %s -> %d", x.Method, x.Path, x.Status)}
	op, params, ok := d.Operation(x.Method, x.Path)
	if !ok {
		if x.Status != http.StatusNotFound {
			e.Violations = append(e.Violations, Violation{"$", "no operation in the document matches this request, but it was answered " + strconv.Itoa(x.Status)})
			return e
		}
		e.Violations = d.ValidateJSON(map[string]any{"$ref": "#/components/schemas/Error"}, x.Body)
		return e.orNil()
	}
	e.Operation = op.Key()
	if op.ID != "" {
		e.Operation += " (" + op.ID + ")"
	}
	resp, key, err := d.Response(op, x.Status)
	switch {
	case err != nil:
		return err
	case resp == nil:
		e.Violations = append(e.Violations, Violation{"$", fmt.Sprintf("status %d is not documented for this operation", x.Status)})
		return e
	}
	e.Violations = append(e.Violations, d.checkResponse(resp, key, x)...)
	if x.Status >= 200 && x.Status < 300 {
		e.Violations = append(e.Violations, d.checkRequest(op, params, x.RequestBody)...)
	}
	return e.orNil()
}

func (e *MismatchError) orNil() error {
	if len(e.Violations) == 0 {
		return nil
	}
	return e
}

func (d *Document) checkResponse(resp map[string]any, key string, x Exchange) []Violation {
	var out []Violation
	headers, _ := resp["headers"].(map[string]any)
	for _, name := range sortedKeys(headers) {
		h, err := d.resolve(headers[name])
		if err != nil {
			return []Violation{{"$", err.Error()}}
		}
		if req, _ := h["required"].(bool); req && x.Header.Get(name) == "" {
			out = append(out, Violation{"header " + name, "required response header is missing (response " + key + ")"})
		}
	}
	schema, hasContent := jsonSchema(resp)
	body := bytes.TrimSpace(x.Body)
	switch {
	case !hasContent && len(body) > 0:
		out = append(out, Violation{"$", fmt.Sprintf("response %s is documented without a body, got %d bytes", key, len(body))})
	case !hasContent:
	case schema == nil:
		out = append(out, Violation{"$", "response " + key + " has no application/json schema"})
	case len(body) == 0:
		out = append(out, Violation{"$", "response " + key + " is documented with a JSON body, got none"})
	default:
		if ct := x.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			out = append(out, Violation{"header Content-Type", fmt.Sprintf("%q, want application/json", ct)})
		}
		out = append(out, d.ValidateJSON(schema, body)...)
	}
	return out
}

func (d *Document) checkRequest(op Operation, params map[string]string, body []byte) []Violation {
	var out []Violation
	for _, p := range d.parameters(op) {
		name, _ := p["name"].(string)
		if in, _ := p["in"].(string); in != "path" {
			continue
		}
		v, ok := params[name]
		if !ok {
			out = append(out, Violation{"path " + name, "path parameter is not in the operation's path"})
			continue
		}
		if s, ok := p["schema"]; ok {
			for _, vio := range d.Validate(s, v) {
				vio.Path = "path " + name + strings.TrimPrefix(vio.Path, "$")
				out = append(out, vio)
			}
		}
	}
	rb, ok := op.Raw["requestBody"]
	if !ok {
		if len(bytes.TrimSpace(body)) > 0 {
			out = append(out, Violation{"request", "a body was accepted but the operation documents none"})
		}
		return out
	}
	obj, err := d.resolve(rb)
	if err != nil {
		return append(out, Violation{"request", err.Error()})
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		if req, _ := obj["required"].(bool); req {
			out = append(out, Violation{"request", "the request body is documented as required, but none was sent and the request succeeded"})
		}
		return out
	}
	schema, _ := jsonSchema(obj)
	for _, vio := range d.ValidateJSON(schema, body) {
		vio.Path = "request " + vio.Path
		out = append(out, vio)
	}
	return out
}

// parameters lists an operation's parameters, path-level ones included,
// references resolved.
func (d *Document) parameters(op Operation) []map[string]any {
	var out []map[string]any
	paths, _ := d.Raw["paths"].(map[string]any)
	item, _ := paths[op.Path].(map[string]any)
	for _, src := range [][]any{list(item["parameters"]), list(op.Raw["parameters"])} {
		for _, p := range src {
			if m, err := d.resolve(p); err == nil {
				out = append(out, m)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return fmt.Sprint(out[i]["name"]) < fmt.Sprint(out[j]["name"]) })
	return out
}
