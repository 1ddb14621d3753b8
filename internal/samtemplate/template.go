package samtemplate

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
)

// Resource types the package interprets.
const (
	TypeFunction = "AWS::Serverless::Function"
	TypeHTTPAPI  = "AWS::Serverless::HttpApi"
)

// AuthorizerNone is the Auth.Authorizer value of a public HTTP API route.
const AuthorizerNone = "NONE"

// Template is a parsed SAM template.
type Template struct {
	// Raw is the whole document, intrinsics in their long form.
	Raw map[string]any
	// Globals is Globals.Function (nil when the template has none).
	Globals map[string]any
	// Resources maps logical IDs to resources.
	Resources map[string]Resource
	// Routes are the HttpApi events of every function, sorted by path,
	// method and function.
	Routes []Route
}

// Resource is one entry of Resources.
type Resource struct {
	Type       string
	Properties map[string]any // never nil
	Metadata   map[string]any // never nil
	Raw        map[string]any // the whole entry (DeletionPolicy, Condition, ...)
}

// Route is one HttpApi event of a function.
type Route struct {
	Method   string // upper case; ANY for a catch-all
	Path     string // API Gateway path template; "$default" when the event has none
	Function string // logical ID of the function
	// Public is true when the event sets Auth.Authorizer to NONE.
	Public bool
	// Scopes are Auth.AuthorizationScopes.
	Scopes []string
	// PayloadFormatVersion is as written, "" when the event leaves it to
	// SAM's default ("2.0").
	PayloadFormatVersion string
	// Event is the event's name in the function's Events.
	Event string
	// Authorizer is Auth.Authorizer ("" when the API's default applies).
	Authorizer string
	// API is the logical ID ApiId refers to ("" when the event leaves it to
	// SAM's implicit API).
	API string
}

// Key is the API Gateway route key, "METHOD /path".
func (r Route) Key() string { return r.Method + " " + r.Path }

// Function is a function's settings with Globals.Function merged in the way
// SAM merges them: maps are merged, lists are concatenated (globals first),
// scalars and intrinsics of the function win.
type Function struct {
	LogicalID     string
	CodeURI       string
	Runtime       string
	Handler       string
	BuildMethod   string // Metadata.BuildMethod
	Architectures []string
	// Environment is Environment.Variables, values as written.
	Environment map[string]any
	// Statements are the statements of the policy documents in Policies.
	Statements []Statement
	// OtherPolicies are the Policies entries that are not policy documents:
	// managed policy names or ARNs and SAM policy templates, as written.
	OtherPolicies []any
	Timeout       int // seconds; 0 when unset or not a literal number
	MemorySize    int // MB; 0 when unset or not a literal number
	Tracing       string
	// Properties are all merged properties.
	Properties map[string]any
}

// Statement is one IAM policy statement with its lists normalised: a single
// Action or Resource becomes a one-element list. Action entries that are not
// strings (intrinsics) are kept as their JSON text so that no check can
// mistake them for an absent action.
type Statement struct {
	Sid          string
	Effect       string // "" when the statement is not a mapping
	Actions      []string
	NotActions   []string
	Resources    []any
	NotResources []any
	Principal    any
	Condition    map[string]any
}

func build(raw map[string]any) (*Template, error) {
	t := &Template{Raw: raw, Resources: map[string]Resource{}}
	if g, ok := raw["Globals"]; ok {
		gm, ok := g.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: Globals is not a mapping", ErrTemplate)
		}
		if f, ok := gm["Function"]; ok {
			if t.Globals, ok = f.(map[string]any); !ok {
				return nil, fmt.Errorf("%w: Globals.Function is not a mapping", ErrTemplate)
			}
		}
	}
	resources, ok := raw["Resources"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: Resources is missing or not a mapping", ErrTemplate)
	}
	for _, id := range sortedKeys(resources) {
		r, err := buildResource(id, resources[id])
		if err != nil {
			return nil, err
		}
		t.Resources[id] = r
		if r.Type != TypeFunction {
			continue
		}
		routes, err := buildRoutes(id, r.Properties)
		if err != nil {
			return nil, err
		}
		t.Routes = append(t.Routes, routes...)
	}
	sort.Slice(t.Routes, func(i, j int) bool {
		a, b := t.Routes[i], t.Routes[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		if a.Method != b.Method {
			return a.Method < b.Method
		}
		return a.Function < b.Function
	})
	return t, nil
}

func buildResource(id string, v any) (Resource, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return Resource{}, fmt.Errorf("%w: resource %s is not a mapping", ErrTemplate, id)
	}
	typ, ok := m["Type"].(string)
	if !ok || typ == "" {
		return Resource{}, fmt.Errorf("%w: resource %s has no Type", ErrTemplate, id)
	}
	r := Resource{Type: typ, Raw: m, Properties: map[string]any{}, Metadata: map[string]any{}}
	for _, f := range []struct {
		name string
		dst  *map[string]any
	}{{"Properties", &r.Properties}, {"Metadata", &r.Metadata}} {
		pv, ok := m[f.name]
		if !ok || pv == nil {
			continue
		}
		pm, ok := pv.(map[string]any)
		if !ok {
			return Resource{}, fmt.Errorf("%w: resource %s: %s is not a mapping", ErrTemplate, id, f.name)
		}
		*f.dst = pm
	}
	return r, nil
}

func buildRoutes(function string, props map[string]any) ([]Route, error) {
	ev, ok := props["Events"]
	if !ok || ev == nil {
		return nil, nil
	}
	events, ok := ev.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: %s: Events is not a mapping", ErrTemplate, function)
	}
	var routes []Route
	for _, name := range sortedKeys(events) {
		e, ok := events[name].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: %s: event %s is not a mapping", ErrTemplate, function, name)
		}
		if e["Type"] != "HttpApi" {
			continue
		}
		p, ok := e["Properties"].(map[string]any)
		if e["Properties"] != nil && !ok {
			return nil, fmt.Errorf("%w: %s: event %s: Properties is not a mapping", ErrTemplate, function, name)
		}
		r := Route{Function: function, Event: name, Method: "ANY", Path: "$default"}
		if v, ok := p["Method"]; ok {
			s, isStr := v.(string)
			if !isStr || s == "" {
				return nil, fmt.Errorf("%w: %s: event %s: Method is not a string", ErrTemplate, function, name)
			}
			r.Method = strings.ToUpper(s)
		}
		if v, ok := p["Path"]; ok {
			s, isStr := v.(string)
			if !isStr || s == "" {
				return nil, fmt.Errorf("%w: %s: event %s: Path is not a string", ErrTemplate, function, name)
			}
			r.Path = s
		}
		if v, ok := p["PayloadFormatVersion"]; ok {
			r.PayloadFormatVersion = scalarText(v)
		}
		if name, ok := RefName(p["ApiId"]); ok {
			r.API = name
		} else if s, ok := p["ApiId"].(string); ok {
			r.API = s
		}
		if a, ok := p["Auth"]; ok {
			auth, isMap := a.(map[string]any)
			if !isMap {
				return nil, fmt.Errorf("%w: %s: event %s: Auth is not a mapping", ErrTemplate, function, name)
			}
			r.Authorizer = scalarText(auth["Authorizer"])
			r.Public = r.Authorizer == AuthorizerNone
			r.Scopes = stringList(auth["AuthorizationScopes"])
		}
		routes = append(routes, r)
	}
	return routes, nil
}

// Function returns a function's merged settings; false when logicalID is not
// an AWS::Serverless::Function.
func (t *Template) Function(logicalID string) (Function, bool) {
	r, ok := t.Resources[logicalID]
	if !ok || r.Type != TypeFunction {
		return Function{}, false
	}
	props, _ := mergeGlobal(t.Globals, r.Properties).(map[string]any)
	f := Function{
		LogicalID:     logicalID,
		CodeURI:       scalarText(props["CodeUri"]),
		Runtime:       scalarText(props["Runtime"]),
		Handler:       scalarText(props["Handler"]),
		BuildMethod:   scalarText(r.Metadata["BuildMethod"]),
		Architectures: stringList(props["Architectures"]),
		Timeout:       intValue(props["Timeout"]),
		MemorySize:    intValue(props["MemorySize"]),
		Tracing:       scalarText(props["Tracing"]),
		Properties:    props,
	}
	if env, ok := props["Environment"].(map[string]any); ok {
		f.Environment, _ = env["Variables"].(map[string]any)
	}
	for _, p := range anyList(props["Policies"]) {
		doc, ok := p.(map[string]any)
		if ok && doc["Statement"] != nil {
			f.Statements = append(f.Statements, PolicyStatements(doc)...)
			continue
		}
		f.OtherPolicies = append(f.OtherPolicies, p)
	}
	return f, true
}

// FunctionIDs lists the logical IDs of the template's functions, sorted.
func (t *Template) FunctionIDs() []string {
	var ids []string
	for id, r := range t.Resources {
		if r.Type == TypeFunction {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// PolicyStatements returns the statements of an IAM policy document (a
// mapping with Statement, a single statement or a list). An entry that is
// not a mapping becomes a Statement with an empty Effect.
func PolicyStatements(doc any) []Statement {
	m, ok := doc.(map[string]any)
	if !ok {
		return nil
	}
	var out []Statement
	for _, s := range anyList(m["Statement"]) {
		sm, ok := s.(map[string]any)
		if !ok {
			out = append(out, Statement{})
			continue
		}
		st := Statement{
			Sid:          scalarText(sm["Sid"]),
			Effect:       scalarText(sm["Effect"]),
			Actions:      stringList(sm["Action"]),
			NotActions:   stringList(sm["NotAction"]),
			Resources:    anyList(sm["Resource"]),
			NotResources: anyList(sm["NotResource"]),
			Principal:    sm["Principal"],
		}
		st.Condition, _ = sm["Condition"].(map[string]any)
		out = append(out, st)
	}
	return out
}

// isIntrinsic reports whether v is a one-key map holding an intrinsic
// function, which SAM's globals merge treats like a scalar.
func isIntrinsic(v any) bool {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return false
	}
	for k := range m {
		return k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::")
	}
	return false
}

// mergeGlobal merges a global value with a resource's value as SAM does.
// The inputs are not modified.
func mergeGlobal(global, local any) any {
	gm, gIsMap := global.(map[string]any)
	lm, lIsMap := local.(map[string]any)
	switch {
	case global == nil:
		return local
	case local == nil:
		return global
	case gIsMap && lIsMap && !isIntrinsic(global) && !isIntrinsic(local):
		out := make(map[string]any, len(gm)+len(lm))
		for k, v := range gm {
			out[k] = v
		}
		for k, v := range lm {
			if gv, ok := out[k]; ok {
				out[k] = mergeGlobal(gv, v)
			} else {
				out[k] = v
			}
		}
		return out
	}
	gl, gIsList := global.([]any)
	ll, lIsList := local.([]any)
	if gIsList && lIsList {
		return append(append([]any{}, gl...), ll...)
	}
	return local
}

// scalarText renders a scalar as text: strings as they are, other values in
// their JSON form (2.0 -> "2", true -> "true"), nil as "".
func scalarText(v any) string {
	switch s := v.(type) {
	case nil:
		return ""
	case string:
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// stringList normalises a string or a list to []string (see Statement).
func stringList(v any) []string {
	var out []string
	for _, e := range anyList(v) {
		out = append(out, scalarText(e))
	}
	return out
}

// anyList normalises a value to a list: nil to nil, a list to itself, any
// other value to a one-element list.
func anyList(v any) []any {
	switch l := v.(type) {
	case nil:
		return nil
	case []any:
		return l
	}
	return []any{v}
}

func intValue(v any) int {
	switch n := v.(type) {
	case int:
		return n
	case int64:
		return int(n)
	case uint64:
		if n <= math.MaxInt {
			return int(n)
		}
	case float64:
		if n == math.Trunc(n) && math.Abs(n) <= math.MaxInt32 {
			return int(n)
		}
	}
	return 0
}
