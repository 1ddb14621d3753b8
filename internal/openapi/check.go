package openapi

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// ErrorSchemaRef is the shared {code, message} error body.
const ErrorSchemaRef = "#/components/schemas/Error"

// Check reports what is wrong with the document itself, one message per
// problem (nil when nothing is):
//   - openapi 3.1.x, info, servers, the JWT bearer scheme;
//   - every operation has a unique operationId, a summary, an explicit
//     security (public: [], otherwise exactly one scope of the JWT
//     scheme), path parameters that match its path template, a 2xx
//     response, 4XX and 5XX responses that use the error schema, and 401
//     and 403 responses when it needs a token;
//   - every $ref resolves; every schema uses only the keywords the
//     validator implements, valid type names and patterns that compile;
//     every schema with properties says whether others are allowed
//     (additionalProperties), and lists only known properties as required;
//   - every example validates against its schema.
func (d *Document) Check() []string {
	c := &checker{d: d, v: newValidator(d.Raw)}
	c.top()
	c.refs("#", d.Raw)
	ids := map[string]string{}
	for _, op := range d.ops {
		c.operation(op, ids)
	}
	c.walkSchemas()
	sort.Strings(c.problems)
	return c.problems
}

type checker struct {
	d        *Document
	v        *validator
	problems []string
}

func (c *checker) addf(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func (c *checker) top() {
	raw := c.d.Raw
	if v, _ := raw["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		c.addf("openapi is %q, want 3.1.x", v)
	}
	info, _ := raw["info"].(map[string]any)
	if s, _ := info["title"].(string); s == "" {
		c.addf("info.title is missing")
	}
	if s, _ := info["version"].(string); s == "" {
		c.addf("info.version is missing (a string)")
	}
	if len(list(raw["servers"])) == 0 {
		c.addf("servers are missing")
	}
	if _, ok := raw["security"]; ok {
		c.addf("top-level security is set: every operation must declare its own")
	}
	comps, _ := raw["components"].(map[string]any)
	schemes, _ := comps["securitySchemes"].(map[string]any)
	jwt, _ := schemes[SecurityScheme].(map[string]any)
	if jwt["type"] != "http" || jwt["scheme"] != "bearer" || jwt["bearerFormat"] != "JWT" {
		c.addf("components.securitySchemes.%s must be {type: http, scheme: bearer, bearerFormat: JWT}", SecurityScheme)
	}
	schemas, _ := comps["schemas"].(map[string]any)
	if _, ok := schemas["Error"]; !ok {
		c.addf("components.schemas.Error (the {code, message} body) is missing")
	}
}

// refs checks that every $ref string in the tree resolves.
func (c *checker) refs(at string, v any) {
	switch t := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(t) {
			if k == "$ref" {
				if s, ok := t[k].(string); !ok {
					c.addf("%s: $ref is not a string", at)
				} else if _, err := resolvePointer(c.d.Raw, s); err != nil {
					c.addf("%s: %v", at, err)
				}
				continue
			}
			if k == "examples" || k == "example" || k == "default" || k == "const" || k == "enum" {
				continue // data, not document structure
			}
			c.refs(at+"/"+k, t[k])
		}
	case []any:
		for i, e := range t {
			c.refs(at+"/"+strconv.Itoa(i), e)
		}
	}
}

var (
	templateParam = regexp.MustCompile(`\{([^{}]+)\}`)
	responseKey   = regexp.MustCompile(`^([1-5]([0-9][0-9]|XX)|default)$`)
)

func (c *checker) operation(op Operation, ids map[string]string) {
	key := op.Key()
	switch {
	case op.ID == "":
		c.addf("%s: operationId is missing", key)
	case ids[op.ID] != "":
		c.addf("%s: operationId %s is also used by %s", key, op.ID, ids[op.ID])
	default:
		ids[op.ID] = key
	}
	if s, _ := op.Raw["summary"].(string); s == "" {
		c.addf("%s: summary is missing", key)
	}
	if _, ok := op.Raw["security"]; !ok {
		c.addf("%s: security is not declared (use [] for a public route)", key)
	} else if !op.Public && len(op.Scopes) != 1 {
		c.addf("%s: security must name exactly one scope of %s, got %q", key, SecurityScheme, op.Scopes)
	}
	c.pathParams(op)
	responses, _ := op.Raw["responses"].(map[string]any)
	success := false
	for code := range responses {
		if strings.HasPrefix(code, "2") {
			success = true
		}
	}
	if !success {
		c.addf("%s: no 2xx response", key)
	}
	// 4xx answers are always a function's (the gateway's own 401/403 are
	// listed separately); 5xx may also be the gateway's.
	c.errorResponse(key, "4XX", responses["4XX"], true)
	c.errorResponse(key, "5XX", responses["5XX"], false)
	if !op.Public {
		for _, code := range []string{"401", "403"} {
			c.errorResponse(key, code, responses[code], false)
		}
	}
	for _, code := range sortedKeys(responses) {
		if !responseKey.MatchString(code) {
			c.addf("%s: response key %q is not a status code, a range or default", key, code)
		}
		if r, err := c.d.resolve(responses[code]); err != nil {
			c.addf("%s: response %s: %v", key, code, err)
		} else if s, _ := r["description"].(string); s == "" {
			c.addf("%s: response %s has no description", key, code)
		}
	}
}

// errorResponse checks that a response exists and that its JSON schema is,
// or offers (oneOf/anyOf), the shared error schema. only says the schema
// must be exactly the error schema.
func (c *checker) errorResponse(key, code string, v any, only bool) {
	if v == nil {
		c.addf("%s: response %s is missing", key, code)
		return
	}
	r, err := c.d.resolve(v)
	if err != nil {
		c.addf("%s: response %s: %v", key, code, err)
		return
	}
	schema, _ := jsonSchema(r)
	s, _ := schema.(map[string]any)
	if s["$ref"] == ErrorSchemaRef {
		return
	}
	if !only {
		for _, kw := range []string{"oneOf", "anyOf"} {
			for _, alt := range list(s[kw]) {
				if m, _ := alt.(map[string]any); m["$ref"] == ErrorSchemaRef {
					return
				}
			}
		}
	}
	c.addf("%s: response %s does not use the error schema %s", key, code, ErrorSchemaRef)
}

func (c *checker) pathParams(op Operation) {
	want := map[string]bool{}
	for _, m := range templateParam.FindAllStringSubmatch(op.Path, -1) {
		want[m[1]] = true
	}
	got := map[string]bool{}
	for _, p := range c.d.parameters(op) {
		name, _ := p["name"].(string)
		switch in, _ := p["in"].(string); in {
		case "path":
			got[name] = true
			if req, _ := p["required"].(bool); !req {
				c.addf("%s: path parameter %s must be required: true", op.Key(), name)
			}
			if !want[name] {
				c.addf("%s: path parameter %s is not in the path template", op.Key(), name)
			}
		case "query", "header", "cookie":
		default:
			c.addf("%s: parameter %s has an invalid in %q", op.Key(), name, in)
		}
		if _, ok := p["schema"]; !ok {
			c.addf("%s: parameter %s has no schema", op.Key(), name)
		}
	}
	for _, name := range sortedKeys(toAnyMap(want)) {
		if !got[name] {
			c.addf("%s: path parameter {%s} is not declared", op.Key(), name)
		}
	}
}

func toAnyMap(m map[string]bool) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// walkSchemas visits every schema of the document: components, parameters,
// headers, request bodies and responses, with their examples.
func (c *checker) walkSchemas() {
	comps, _ := c.d.Raw["components"].(map[string]any)
	schemas, _ := comps["schemas"].(map[string]any)
	for _, name := range sortedKeys(schemas) {
		c.schema("#/components/schemas/"+name, schemas[name])
	}
	for _, kind := range []string{"responses", "parameters", "requestBodies", "headers"} {
		objs, _ := comps[kind].(map[string]any)
		for _, name := range sortedKeys(objs) {
			c.holder("#/components/"+kind+"/"+name, objs[name])
		}
	}
	paths, _ := c.d.Raw["paths"].(map[string]any)
	for _, op := range c.d.ops {
		item, _ := paths[op.Path].(map[string]any)
		at := "#/paths/" + strings.ReplaceAll(op.Path, "/", "~1") + "/" + strings.ToLower(op.Method)
		for i, p := range list(item["parameters"]) {
			c.holder(fmt.Sprintf("#/paths/%s/parameters/%d", strings.ReplaceAll(op.Path, "/", "~1"), i), p)
		}
		for i, p := range list(op.Raw["parameters"]) {
			c.holder(fmt.Sprintf("%s/parameters/%d", at, i), p)
		}
		if rb, ok := op.Raw["requestBody"]; ok {
			c.holder(at+"/requestBody", rb)
		}
		responses, _ := op.Raw["responses"].(map[string]any)
		for _, code := range sortedKeys(responses) {
			c.holder(at+"/responses/"+code, responses[code])
		}
	}
}

// holder checks an object that carries schemas: a parameter or header
// (schema, example(s)), a request body or response (content, headers).
func (c *checker) holder(at string, v any) {
	m, _ := v.(map[string]any)
	if m == nil || m["$ref"] != nil {
		return // references are checked where they point
	}
	if s, ok := m["schema"]; ok {
		c.schema(at+"/schema", s)
		c.examples(at, s, m)
	}
	content, _ := m["content"].(map[string]any)
	for _, mt := range sortedKeys(content) {
		media, _ := content[mt].(map[string]any)
		s, ok := media["schema"]
		if !ok {
			c.addf("%s/content/%s: no schema", at, mt)
			continue
		}
		c.schema(at+"/content/"+mt+"/schema", s)
		c.examples(at+"/content/"+mt, s, media)
	}
	headers, _ := m["headers"].(map[string]any)
	for _, name := range sortedKeys(headers) {
		c.holder(at+"/headers/"+name, headers[name])
	}
}

// examples validates a media type's or parameter's example / examples.
func (c *checker) examples(at string, schema any, m map[string]any) {
	if ex, ok := m["example"]; ok {
		c.example(at+"/example", schema, ex)
	}
	exs, _ := m["examples"].(map[string]any)
	for _, name := range sortedKeys(exs) {
		obj, _ := exs[name].(map[string]any)
		val, ok := obj["value"]
		if !ok {
			c.addf("%s/examples/%s: no value", at, name)
			continue
		}
		c.example(at+"/examples/"+name, schema, val)
	}
}

func (c *checker) example(at string, schema, value any) {
	var out []Violation
	c.v.validate(schema, value, "$", &out)
	for _, v := range out {
		c.addf("%s: example does not match its schema: %s", at, v)
	}
}

// schema checks one schema and its subschemas.
func (c *checker) schema(at string, v any) {
	s, ok := v.(map[string]any)
	if !ok {
		if _, isBool := v.(bool); !isBool {
			c.addf("%s: a schema must be an object or a boolean", at)
		}
		return
	}
	for _, k := range sortedKeys(s) {
		if !assertionKeywords[k] && !annotationKeywords[k] && !strings.HasPrefix(k, "x-") {
			c.addf("%s: keyword %q is not supported by the validator", at, k)
		}
	}
	if t, ok := s["type"]; ok {
		names := list(t)
		if str, isStr := t.(string); isStr {
			names = []any{str}
		}
		if len(names) == 0 {
			c.addf("%s: type must be a name or a list of names", at)
		}
		for _, n := range names {
			if str, _ := n.(string); !validTypes[str] {
				c.addf("%s: unknown type %v", at, n)
			}
		}
	}
	if p, ok := s["pattern"]; ok {
		if str, isStr := p.(string); !isStr {
			c.addf("%s: pattern is not a string", at)
		} else if _, err := regexp.Compile(str); err != nil {
			c.addf("%s: pattern %q does not compile (Go RE2): %v", at, str, err)
		}
	}
	if e, ok := s["enum"]; ok && len(list(e)) == 0 {
		c.addf("%s: enum must be a non-empty list", at)
	}
	props, hasProps := s["properties"].(map[string]any)
	if hasProps {
		if _, ok := s["additionalProperties"]; !ok {
			c.addf("%s: object with properties must declare additionalProperties (false for our own bodies)", at)
		}
		for _, name := range sortedKeys(props) {
			c.schema(at+"/properties/"+name, props[name])
		}
	}
	for _, r := range list(s["required"]) {
		name, _ := r.(string)
		if _, ok := props[name]; hasProps && !ok {
			c.addf("%s: required property %q is not in properties", at, name)
		}
	}
	if ap, ok := s["additionalProperties"].(map[string]any); ok {
		c.schema(at+"/additionalProperties", ap)
	}
	if items, ok := s["items"]; ok {
		c.schema(at+"/items", items)
	}
	for _, kw := range []string{"oneOf", "anyOf", "allOf"} {
		if v, ok := s[kw]; ok && len(list(v)) == 0 {
			c.addf("%s: %s must be a non-empty list", at, kw)
		}
		for i, sub := range list(s[kw]) {
			c.schema(fmt.Sprintf("%s/%s/%d", at, kw, i), sub)
		}
	}
	for i, ex := range list(s["examples"]) {
		c.example(fmt.Sprintf("%s/examples/%d", at, i), s, ex)
	}
	if _, ok := s["examples"]; ok && list(s["examples"]) == nil {
		c.addf("%s: schema examples must be a list", at)
	}
}
