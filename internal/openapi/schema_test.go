package openapi

import (
	"strings"
	"testing"
)

// schemaDoc is a small document whose components the validator cases
// refer to.
const schemaDoc = `
openapi: 3.1.0
info: {title: t, version: "1"}
paths: {}
components:
  schemas:
    Money: {type: integer, minimum: 0}
    Item:
      type: object
      required: [name]
      additionalProperties: false
      properties:
        name: {type: string}
        amount: {$ref: '#/components/schemas/Money'}
    Loop: {$ref: '#/components/schemas/Loop'}
`

// TestValidate runs the validator over one case per keyword, each a value
// that passes and values that fail at a known JSON path.
func TestValidate(t *testing.T) {
	d, err := Parse([]byte(schemaDoc))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		schema string // YAML
		value  string // JSON
		want   []string
	}{
		{"type ok", `{type: string}`, `"x"`, nil},
		{"type wrong", `{type: string}`, `12`, []string{"$: type is integer, want string"}},
		{"integer is a number", `{type: number}`, `12`, nil},
		{"fraction is not an integer", `{type: integer}`, `1.5`, []string{"$: type is number, want integer"}},
		{"whole float is an integer", `{type: integer}`, `2.0`, nil},
		{"nullable by type list", `{type: [string, "null"]}`, `null`, nil},
		{"type list miss", `{type: [string, "null"]}`, `true`, []string{"$: type is boolean, want string or null"}},
		{"nested property path", `{type: object, additionalProperties: true, properties: {a: {type: object, additionalProperties: true, properties: {b: {type: integer}}}}}`,
			`{"a":{"b":"x"}}`, []string{"$.a.b: type is string, want integer"}},
		{"required missing", `{type: object, required: [code, message], additionalProperties: true, properties: {}}`, `{"code":"X"}`,
			[]string{`$: required property "message" is missing`}},
		{"additional property refused", `{type: object, additionalProperties: false, properties: {a: {type: string}}}`, `{"a":"x","extra":1}`,
			[]string{"$.extra: property is not allowed"}},
		{"additional property by schema", `{type: object, additionalProperties: {type: integer}}`, `{"ok":1,"bad-key":"x"}`,
			[]string{`$["bad-key"]: type is string, want integer`}},
		{"additional properties allowed by default", `{type: object}`, `{"anything":[1]}`, nil},
		{"items path", `{type: array, items: {type: string}}`, `["a",2,"c"]`, []string{"$[1]: type is integer, want string"}},
		{"min and max items", `{type: array, minItems: 2, maxItems: 3}`, `[1]`, []string{"$: 1 items, want at least 2"}},
		{"max items", `{type: array, maxItems: 1}`, `[1,2]`, []string{"$: 2 items, want at most 1"}},
		{"enum ok", `{type: string, enum: [A, B]}`, `"B"`, nil},
		{"enum miss", `{type: string, enum: [A, B]}`, `"C"`, []string{`$: "C" is not one of ["A","B"]`}},
		{"enum of numbers compares values", `{enum: [1, 2]}`, `2.0`, nil},
		{"const", `{const: true}`, `false`, []string{"$: false is not true"}},
		{"minimum", `{type: integer, minimum: 1}`, `0`, []string{"$: 0 is below the minimum 1"}},
		{"maximum", `{type: integer, maximum: 1000000000}`, `1000000001`, []string{"$: 1000000001 is above the maximum 1000000000"}},
		{"exclusive bounds", `{type: number, exclusiveMinimum: 0, exclusiveMaximum: 1}`, `1`, []string{"$: 1 is not below 1"}},
		{"minLength counts characters", `{type: string, minLength: 4}`, `"充电宝"`, []string{`$: "充电宝" has 3 characters, want at least 4`}},
		{"maxLength counts characters", `{type: string, maxLength: 3}`, `"充电宝"`, nil},
		{"pattern is unanchored", `{type: string, pattern: 'b'}`, `"abc"`, nil},
		{"pattern anchored miss", `{type: string, pattern: '^[0-9]{3}$'}`, `"1234"`, []string{`$: "1234" does not match pattern ^[0-9]{3}$`}},
		{"oneOf exactly one", `{oneOf: [{type: string}, {type: integer}]}`, `3`, nil},
		{"oneOf none", `{oneOf: [{type: string}, {type: boolean}]}`, `3`, []string{"$: matches none of oneOf: [0] $: type is integer, want string; [1] $: type is integer, want boolean"}},
		{"oneOf two", `{oneOf: [{type: number}, {type: integer}]}`, `3`, []string{"$: matches 2 of oneOf, want exactly 1"}},
		{"oneOf of required sets", `{type: object, oneOf: [{required: [a]}, {required: [b]}]}`, `{"a":1,"b":2}`, []string{"$: matches 2 of oneOf"}},
		{"anyOf", `{anyOf: [{type: string}, {type: integer}]}`, `true`, []string{"$: matches none of anyOf"}},
		{"allOf", `{allOf: [{type: integer}, {minimum: 5}]}`, `4`, []string{"$: 4 is below the minimum 5"}},
		{"ref to a component", `{$ref: '#/components/schemas/Item'}`, `{"name":"n","amount":-1}`, []string{"$.amount: -1 is below the minimum 0"}},
		{"ref in items", `{type: array, items: {$ref: '#/components/schemas/Item'}}`, `[{"name":"a"},{"amount":1}]`,
			[]string{`$[1]: required property "name" is missing`}},
		{"dangling ref", `{$ref: '#/components/schemas/Nope'}`, `1`, []string{`$: reference "#/components/schemas/Nope" does not resolve`}},
		{"ref cycle stops", `{$ref: '#/components/schemas/Loop'}`, `1`, []string{"$: schema nesting too deep"}},
		{"false schema", `{type: object, additionalProperties: true, properties: {gone: false}}`, `{"gone":1}`, []string{"$.gone: no value is allowed here"}},
		{"several violations", `{$ref: '#/components/schemas/Item'}`, `{"amount":"1","x":1}`,
			[]string{`$: required property "name" is missing`, "$.amount: type is string, want integer", "$.x: property is not allowed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			schema, err := Parse([]byte(tt.schema))
			if err != nil {
				t.Fatalf("schema %s: %v", tt.schema, err)
			}
			got := d.ValidateJSON(schema.Raw, []byte(tt.value))
			if len(got) != len(tt.want) {
				t.Fatalf("validate %s against %s = %v, want %d violations %q", tt.value, tt.schema, got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i].String(), w) {
					t.Errorf("validate %s against %s: violation %d = %q, want it to contain %q", tt.value, tt.schema, i, got[i], w)
				}
			}
		})
	}
}

// TestValidateJSONRejectsNonJSON: a body that is not one JSON value is a
// violation at the root.
func TestValidateJSONRejectsNonJSON(t *testing.T) {
	d, err := Parse([]byte(schemaDoc))
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"", "{", `{"a":1} {"b":2}`, "<html>"} {
		got := d.ValidateJSON(map[string]any{"type": "object"}, []byte(body))
		if len(got) != 1 || got[0].Path != "$" {
			t.Errorf("ValidateJSON(%q) = %v, want one violation at $", body, got)
		}
	}
}

// TestParse covers the YAML conversion rules the document relies on.
func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr string
		check   func(t *testing.T, d *Document)
	}{
		{"status codes become strings", "paths:\n  /x:\n    get:\n      responses:\n        200: {description: ok}\n", "", func(t *testing.T, d *Document) {
			op, _, ok := d.Operation("GET", "/x")
			if !ok {
				t.Fatal("GET /x not found")
			}
			r, key, err := d.Response(op, 200)
			if err != nil || key != "200" || r["description"] != "ok" {
				t.Errorf("Response(200) = %v, %q, %v; want the 200 response", r, key, err)
			}
		}},
		{"merge keys fill unset keys", "a: &x {p: 1, q: 2}\nb:\n  <<: *x\n  q: 3\n", "", func(t *testing.T, d *Document) {
			b := d.Raw["b"].(map[string]any)
			if b["p"] != int64(1) || b["q"] != int64(3) {
				t.Errorf("b = %v, want p 1 (merged) and q 3 (explicit)", b)
			}
		}},
		{"duplicate key", "a: 1\na: 2\n", "duplicate key", nil},
		{"not a mapping", "- 1\n", "not a mapping", nil},
		{"empty", "", "empty document", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.yaml))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want %q", tt.yaml, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.yaml, err)
			}
			tt.check(t, d)
		})
	}
}

// TestOperationMatching: path templates match concrete paths (query string
// ignored, escapes decoded) and the most literal template wins.
func TestOperationMatching(t *testing.T) {
	d, err := Parse([]byte(`
paths:
  /a/{id}:
    get: {operationId: byID}
  /a/latest:
    get: {operationId: latest}
  /a/{id}/b:
    post: {operationId: sub}
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, path string
		wantID       string
		wantParams   map[string]string
	}{
		{"GET", "/a/42?x=1", "byID", map[string]string{"id": "42"}},
		{"get", "/a/latest", "latest", map[string]string{}},
		{"GET", "/a/%E5%85%85", "byID", map[string]string{"id": "充"}},
		{"POST", "/a/7/b", "sub", map[string]string{"id": "7"}},
		{"POST", "/a/7", "", nil},
		{"GET", "/a/", "", nil},
	}
	for _, tt := range tests {
		op, params, ok := d.Operation(tt.method, tt.path)
		if ok != (tt.wantID != "") || op.ID != tt.wantID {
			t.Errorf("Operation(%s %s) = %q, %v; want %q", tt.method, tt.path, op.ID, ok, tt.wantID)
			continue
		}
		for k, v := range tt.wantParams {
			if params[k] != v {
				t.Errorf("Operation(%s %s) params = %v, want %v", tt.method, tt.path, params, tt.wantParams)
			}
		}
	}
}
