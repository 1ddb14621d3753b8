package samtemplate_test

import (
	"errors"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/wxpay-serverless/wxpay-serverless/internal/samtemplate"
)

// valueOf parses snippet as the value of a property and returns it.
func valueOf(t *testing.T, snippet string) any {
	t.Helper()
	src := "Resources:\n  R:\n    Type: AWS::Test::Thing\n    Properties:\n      V: " + snippet + "\n"
	tpl, err := samtemplate.Parse([]byte(src))
	if err != nil {
		t.Fatalf("Parse(%q) error: %v", src, err)
	}
	return tpl.Resources["R"].Properties["V"]
}

func TestParseIntrinsicTags(t *testing.T) {
	type m = map[string]any
	type l = []any
	tests := []struct {
		snippet string
		want    any
	}{
		{"!Ref Table", m{"Ref": "Table"}},
		{"!Ref AWS::Region", m{"Ref": "AWS::Region"}},
		{"!GetAtt Table.Arn", m{"Fn::GetAtt": "Table.Arn"}},
		{"!GetAtt [Table, Arn]", m{"Fn::GetAtt": l{"Table", "Arn"}}},
		{`!Sub "${Table.Arn}/index/*"`, m{"Fn::Sub": "${Table.Arn}/index/*"}},
		{"!Sub ['${A}-${B}', {A: !Ref X, B: b}]", m{"Fn::Sub": l{"${A}-${B}", m{"A": m{"Ref": "X"}, "B": "b"}}}},
		{`!Join ["", [!Ref A, "-x"]]`, m{"Fn::Join": l{"", l{m{"Ref": "A"}, "-x"}}}},
		{"!If [IsProd, 1, 2]", m{"Fn::If": l{"IsProd", 1, 2}}},
		{"!Equals [!Ref Stage, prod]", m{"Fn::Equals": l{m{"Ref": "Stage"}, "prod"}}},
		{"!Select [0, !GetAZs '']", m{"Fn::Select": l{0, m{"Fn::GetAZs": ""}}}},
		{"!Split [',', !Ref L]", m{"Fn::Split": l{",", m{"Ref": "L"}}}},
		{"!GetAZs us-east-1", m{"Fn::GetAZs": "us-east-1"}},
		{"!ImportValue shared-vpc", m{"Fn::ImportValue": "shared-vpc"}},
		{"!FindInMap [M, !Ref AWS::Region, K]", m{"Fn::FindInMap": l{"M", m{"Ref": "AWS::Region"}, "K"}}},
		{"!Base64 hello", m{"Fn::Base64": "hello"}},
		{"!Cidr [10.0.0.0/16, 4, 8]", m{"Fn::Cidr": l{"10.0.0.0/16", 4, 8}}},
		{"!Condition IsProd", m{"Condition": "IsProd"}},
		{"!Not [!Condition IsProd]", m{"Fn::Not": l{m{"Condition": "IsProd"}}}},
		{"!And [!Condition A, !Condition B]", m{"Fn::And": l{m{"Condition": "A"}, m{"Condition": "B"}}}},
		{"!Or [!Condition A, !Condition B]", m{"Fn::Or": l{m{"Condition": "A"}, m{"Condition": "B"}}}},
		{"{Fn::GetAtt: [A, B]}", m{"Fn::GetAtt": l{"A", "B"}}},
		{`"2.0"`, "2.0"},
		{"2.0", 2.0},
		{"15", 15},
		{"true", true},
		{`"false"`, "false"},
		{"OFF", "OFF"},
		{"~", nil},
		{"2024-01-02", "2024-01-02"},
	}
	for _, tt := range tests {
		t.Run(tt.snippet, func(t *testing.T) {
			if got := valueOf(t, tt.snippet); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("value of %q = %#v, want %#v", tt.snippet, got, tt.want)
			}
		})
	}
}

func TestParseAliasesAndMergeKeys(t *testing.T) {
	src := `
Base: &base {A: 1, B: 2}
Resources:
  R:
    Type: AWS::Test::Thing
    Properties:
      Merged: {<<: *base, B: 3, C: 4}
      Alias: *base
`
	tpl, err := samtemplate.Parse([]byte(src))
	if err != nil {
		t.Fatalf("Parse(%q) error: %v", src, err)
	}
	props := tpl.Resources["R"].Properties
	for _, tt := range []struct {
		key  string
		want any
	}{
		{"Merged", map[string]any{"A": 1, "B": 3, "C": 4}},
		{"Alias", map[string]any{"A": 1, "B": 2}},
	} {
		if got := props[tt.key]; !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Properties.%s of %q = %#v, want %#v", tt.key, src, got, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string // substring of the error
	}{
		{"malformed YAML", "Resources: [unclosed", "YAML"},
		{"bad indentation", "Resources:\n  R:\n    Type: X\n   Properties: {}\n", "YAML"},
		{"empty", "", "empty"},
		{"top level list", "- a\n- b\n", "top level"},
		{"no Resources", "Description: x\n", "Resources"},
		{"resource without Type", "Resources:\n  R:\n    Properties: {}\n", "no Type"},
		{"unknown tag", "Resources:\n  R:\n    Type: X\n    Properties: {V: !Reff A}\n", "!Reff"},
		{"Ref on a list", "Resources:\n  R:\n    Type: X\n    Properties: {V: !Ref [A]}\n", "!Ref"},
		{"duplicate key", "Resources:\n  R:\n    Type: X\n  R:\n    Type: Y\n", "duplicate key"},
		{"Globals not a map", "Globals: [x]\nResources: {}\n", "Globals"},
		{"Events not a map", "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties: {Events: [x]}\n", "Events"},
		{"Method not a string", "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Events:\n        E: {Type: HttpApi, Properties: {Path: /x, Method: [GET]}}\n", "Method"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl, err := samtemplate.Parse([]byte(tt.src))
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error containing %q", tt.src, tpl, tt.want)
			}
			if !errors.Is(err, samtemplate.ErrTemplate) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) error = %v, want ErrTemplate containing %q", tt.src, err, tt.want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.yaml")
	if _, err := samtemplate.Load(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(%q) error = %v, want fs.ErrNotExist", path, err)
	}
}

const functionSrc = `
Globals:
  Function:
    Runtime: provided.al2023
    Handler: bootstrap
    Timeout: 15
    Architectures: [arm64]
    Layers: [global-layer]
    Environment:
      Variables:
        A: "1"
        B: !Ref ParamB
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Metadata: {BuildMethod: makefile}
    Properties:
      CodeUri: .
      Timeout: 30
      Layers: [local-layer]
      Environment:
        Variables:
          B: "3"
          C: !GetAtt Thing.Arn
      Policies:
        - Version: "2012-10-17"
          Statement:
            Effect: Allow
            Action: s3:GetObject
            Resource: !Sub "${Bucket.Arn}/*"
        - Statement:
            - Sid: Two
              Effect: Allow
              Action: [sqs:SendMessage, sqs:GetQueueUrl]
              Resource: [!GetAtt Q.Arn, !Ref Other]
              Condition: {Bool: {aws:SecureTransport: "true"}}
        - AWSLambdaExecute
        - DynamoDBCrudPolicy: {TableName: !Ref T}
      Events:
        Post:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Path: /things, Method: post, PayloadFormatVersion: "2.0", Auth: {Authorizer: Jwt, AuthorizationScopes: [a/b]}}
        Hook:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Path: /hook/{id}
            Method: POST
            Auth: {Authorizer: NONE}
        CatchAll:
          Type: HttpApi
        Nightly:
          Type: ScheduleV2
          Properties: {ScheduleExpression: rate(1 day)}
  NotAFunction:
    Type: AWS::SQS::Queue
`

func TestFunctionMergesGlobals(t *testing.T) {
	tpl, err := samtemplate.Parse([]byte(functionSrc))
	if err != nil {
		t.Fatalf("Parse error: %v", err)
	}
	f, ok := tpl.Function("Fn")
	if !ok {
		t.Fatalf("Function(%q) not found", "Fn")
	}
	checks := []struct {
		field     string
		got, want any
	}{
		{"LogicalID", f.LogicalID, "Fn"},
		{"CodeURI", f.CodeURI, "."},
		{"Runtime", f.Runtime, "provided.al2023"},
		{"Handler", f.Handler, "bootstrap"},
		{"BuildMethod", f.BuildMethod, "makefile"},
		{"Timeout", f.Timeout, 30},
		{"Architectures", f.Architectures, []string{"arm64"}},
		{"Properties.Layers", f.Properties["Layers"], []any{"global-layer", "local-layer"}},
		{"Environment", f.Environment, map[string]any{"A": "1", "B": "3", "C": map[string]any{"Fn::GetAtt": "Thing.Arn"}}},
		{"Statements", f.Statements, []samtemplate.Statement{
			{Effect: "Allow", Actions: []string{"s3:GetObject"}, Resources: []any{map[string]any{"Fn::Sub": "${Bucket.Arn}/*"}}},
			{Sid: "Two", Effect: "Allow", Actions: []string{"sqs:SendMessage", "sqs:GetQueueUrl"},
				Resources: []any{map[string]any{"Fn::GetAtt": "Q.Arn"}, map[string]any{"Ref": "Other"}},
				Condition: map[string]any{"Bool": map[string]any{"aws:SecureTransport": "true"}}},
		}},
		{"OtherPolicies", f.OtherPolicies, []any{"AWSLambdaExecute", map[string]any{"DynamoDBCrudPolicy": map[string]any{"TableName": map[string]any{"Ref": "T"}}}}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("Function(Fn).%s = %#v, want %#v", c.field, c.got, c.want)
		}
	}
	// The globals themselves are untouched by the merge.
	if got := tpl.Globals["Layers"]; !reflect.DeepEqual(got, []any{"global-layer"}) {
		t.Errorf("Globals.Layers after Function = %#v, want [global-layer]", got)
	}
	for _, id := range []string{"NotAFunction", "Missing"} {
		if _, ok := tpl.Function(id); ok {
			t.Errorf("Function(%q) found, want false", id)
		}
	}
	if got, want := tpl.FunctionIDs(), []string{"Fn"}; !reflect.DeepEqual(got, want) {
		t.Errorf("FunctionIDs() = %q, want %q", got, want)
	}
}

func TestRoutes(t *testing.T) {
	tpl, err := samtemplate.Parse([]byte(functionSrc))
	if err != nil {
		t.Fatalf("Parse error: %v", err)
	}
	want := []samtemplate.Route{
		{Method: "ANY", Path: "$default", Function: "Fn", Event: "CatchAll"},
		{Method: "POST", Path: "/hook/{id}", Function: "Fn", Public: true, Event: "Hook", Authorizer: "NONE", API: "Api"},
		{Method: "POST", Path: "/things", Function: "Fn", Scopes: []string{"a/b"}, PayloadFormatVersion: "2.0", Event: "Post", Authorizer: "Jwt", API: "Api"},
	}
	if !reflect.DeepEqual(tpl.Routes, want) {
		t.Errorf("Routes = %+v, want %+v", tpl.Routes, want)
	}
	if got := want[2].Key(); got != "POST /things" {
		t.Errorf("Key() = %q, want %q", got, "POST /things")
	}
}

func TestReferences(t *testing.T) {
	type m = map[string]any
	tests := []struct {
		name string
		in   any
		want []samtemplate.Reference
	}{
		{"Ref", m{"Ref": "Table"}, []samtemplate.Reference{{Kind: "Ref", Name: "Table"}}},
		{"GetAtt string", m{"Fn::GetAtt": "Endpoint.Address.Port"}, []samtemplate.Reference{{Kind: "Fn::GetAtt", Name: "Endpoint", Attribute: "Address.Port"}}},
		{"GetAtt list", m{"Fn::GetAtt": []any{"Q", "Arn"}}, []samtemplate.Reference{{Kind: "Fn::GetAtt", Name: "Q", Attribute: "Arn"}}},
		{"Sub", m{"Fn::Sub": "arn:${AWS::Partition}:x:${!Literal}:${Table.Arn}/${ Stage }"}, []samtemplate.Reference{
			{Kind: "Fn::Sub", Name: "AWS::Partition"}, {Kind: "Fn::Sub", Name: "Table", Attribute: "Arn"}, {Kind: "Fn::Sub", Name: "Stage"},
		}},
		{"Sub with local variables", m{"X": m{"Fn::Sub": []any{"${Local}-${Global}", m{"Local": m{"Ref": "Param"}}}}}, []samtemplate.Reference{
			{Kind: "Ref", Name: "Param", Path: "X.Fn::Sub.Local"}, {Kind: "Fn::Sub", Name: "Global", Path: "X"},
		}},
		{"nested", m{"A": []any{m{"Ref": "B"}, "plain", m{"C": m{"Fn::GetAtt": "D.Arn"}}}}, []samtemplate.Reference{
			{Kind: "Ref", Name: "B", Path: "A[0]"}, {Kind: "Fn::GetAtt", Name: "D", Attribute: "Arn", Path: "A[2].C"},
		}},
		{"no references", m{"A": "${NotSub}", "B": 1}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := samtemplate.References(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("References(%s) = %+v, want %+v", show(tt.in), got, tt.want)
			}
		})
	}
}

func TestIntrinsicHelpers(t *testing.T) {
	type m = map[string]any
	tests := []struct {
		name   string
		in     any
		ref    string
		getAtt string
		sub    string
	}{
		{"Ref", m{"Ref": "X"}, "X", "", ""},
		{"GetAtt string", m{"Fn::GetAtt": "A.B"}, "", "A.B", ""},
		{"GetAtt list", m{"Fn::GetAtt": []any{"A", "B"}}, "", "A.B", ""},
		{"GetAtt without attribute", m{"Fn::GetAtt": "A"}, "", "", ""},
		{"Sub string", m{"Fn::Sub": "s"}, "", "", "s"},
		{"Sub list", m{"Fn::Sub": []any{"s", m{}}}, "", "", "s"},
		{"two keys", m{"Ref": "X", "Other": 1}, "", "", ""},
		{"plain string", "X", "", "", ""},
		{"Ref to non-string", m{"Ref": 1}, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref, _ := samtemplate.RefName(tt.in)
			getAtt, _ := samtemplate.GetAttName(tt.in)
			sub, _ := samtemplate.SubTemplate(tt.in)
			if ref != tt.ref || getAtt != tt.getAtt || sub != tt.sub {
				t.Errorf("RefName, GetAttName, SubTemplate of %s = %q, %q, %q; want %q, %q, %q", show(tt.in), ref, getAtt, sub, tt.ref, tt.getAtt, tt.sub)
			}
		})
	}
}

func TestSubVariables(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"plain", nil},
		{"${A}", []string{"A"}},
		{"x${A.Arn}y${!Lit}z${AWS::Region}", []string{"A.Arn", "AWS::Region"}},
		{"${unclosed", nil},
	}
	for _, tt := range tests {
		if got := samtemplate.SubVariables(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("SubVariables(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
