package samtemplate_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"gopkg.in/yaml.v3"

	"github.com/wxpay-serverless/wxpay-serverless/internal/samtemplate"
	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/billing"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/coupons"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/notify"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/payments"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/payscore"
	"github.com/wxpay-serverless/wxpay-serverless/shared/coldstart"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ddbstore"
	"github.com/wxpay-serverless/wxpay-serverless/shared/reconcile"
)

const templatePath = "../../template.yaml"

// Logical IDs the tests refer to.
const (
	fnNotify   = "NotifyFunction"
	fnPayscore = "PayscoreFunction"
	fnCoupons  = "CouponsFunction"
	fnPayments = "PaymentsFunction"
	fnBilling  = "BillingFunction"

	jwtAuthorizer = "JwtAuthorizer"
)

// check inspects the parsed template (and its source, for checks that need
// YAML details) and returns one message per problem.
type check struct {
	name string
	run  func(tpl *samtemplate.Template, src []byte) []string
}

func checks() []check {
	return []check{
		{"parameters", checkParameters},
		{"functions", checkFunctions},
		{"environment", checkEnvironment},
		{"routes", checkRoutes},
		{"auth", checkAuth},
		{"authorizer", checkAuthorizer},
		{"iam", checkIAM},
		{"scheduler-role", checkSchedulerRole},
		{"schedule", checkSchedule},
		{"billing", checkBilling},
		{"payscore-sweep", checkPayscoreSweep},
		{"table", checkTable},
		{"bucket", checkBucket},
		{"outputs", checkOutputs},
		{"references", checkReferences},
		{"cycles", checkCycles},
		{"yaml11", checkYAML11},
		{"alarms", checkAlarms},
	}
}

func runCheck(t *testing.T, name string) func(*samtemplate.Template, []byte) []string {
	t.Helper()
	for _, c := range checks() {
		if c.name == name {
			return c.run
		}
	}
	t.Fatalf("no check named %q", name)
	return nil
}

func readTemplate(t *testing.T) []byte {
	t.Helper()
	src, err := os.ReadFile(templatePath)
	if err != nil {
		t.Fatalf("read %s: %v", templatePath, err)
	}
	return src
}

// TestTemplate runs every check on template.yaml.
func TestTemplate(t *testing.T) {
	src := readTemplate(t)
	tpl, err := samtemplate.Load(templatePath)
	if err != nil {
		t.Fatalf("Load(%q) error: %v", templatePath, err)
	}
	for _, c := range checks() {
		t.Run(c.name, func(t *testing.T) {
			for _, p := range c.run(tpl, src) {
				t.Error(p)
			}
		})
	}
}

// TestChecksCatchMistakes proves the checks can fail: each case breaks
// template.yaml in one place and expects the named check to report it.
func TestChecksCatchMistakes(t *testing.T) {
	src := string(readTemplate(t))
	tests := []struct {
		name  string
		old   string // replaced once
		new   string
		check string
		want  string // substring of one reported problem
	}{
		{"dangling Ref", "TABLE_NAME: !Ref Table", "TABLE_NAME: !Ref Tabel", "references", `"Tabel"`},
		{"dangling Sub variable", `!Sub "${Table.Arn}/index/*"`, `!Sub "${Tabel.Arn}/index/*"`, "references", `"Tabel"`},
		{"unknown GetAtt attribute", "TargetArn: !GetAtt BillingDLQ.Arn", "TargetArn: !GetAtt BillingDLQ.Url", "references", `"Url"`},
		{"dangling DependsOn", "  NotifyLogGroup:\n    Type: AWS::Logs::LogGroup\n", "  NotifyLogGroup:\n    Type: AWS::Logs::LogGroup\n    DependsOn: NotifyFn\n", "references", `"NotifyFn"`},
		{"wildcard action", "- dynamodb:Query", "- dynamodb:*", "iam", "wildcard"},
		{"extra action", "- dynamodb:Query", "- dynamodb:Scan", "iam", "dynamodb:Scan"},
		{"wildcard resource", "Resource: !Ref MerchantSecretArn", `Resource: "*"`, "iam", "wildcard"},
		{"foreign resource", "Resource: !GetAtt EventBus.Arn", "Resource: !GetAtt BillsBucket.Arn", "iam", "events:PutEvents on BillsBucket.Arn"},
		{"missing grant", "                - dynamodb:ConditionCheckItem\n", "", "iam", "lacks dynamodb:ConditionCheckItem"},
		{"SAM policy template", "      Policies:\n", "      Policies:\n        - DynamoDBCrudPolicy:\n            TableName: !Ref Table\n", "iam", "DynamoDBCrudPolicy"},
		{"route missing in template", "Path: /payments/refunds/{out_refund_no}", "Path: /payments/refund/{out_refund_no}", "routes", "/payments/refunds/{out_refund_no}"},
		{"duplicate route", "Path: /payments/orders/{out_trade_no}/close", "Path: /payments/orders", "routes", "duplicate"},
		{"unquoted payload format", `Path: /payments/refunds
            Method: POST
            PayloadFormatVersion: "2.0"`, `Path: /payments/refunds
            Method: POST
            PayloadFormatVersion: 2.0`, "routes", "PayloadFormatVersion"},
		{"wrong scope", `Path: /coupons/deactivate
            Method: POST
            PayloadFormatVersion: "2.0"
            Auth:
              Authorizer: JwtAuthorizer
              AuthorizationScopes: [wxpay/admin]`, `Path: /coupons/deactivate
            Method: POST
            PayloadFormatVersion: "2.0"
            Auth:
              Authorizer: JwtAuthorizer
              AuthorizationScopes: [wxpay/app]`, "routes", "/coupons/deactivate"},
		{"second public route", `Path: /payments/health
            Method: GET
            PayloadFormatVersion: "2.0"
            Auth:
              Authorizer: JwtAuthorizer
              AuthorizationScopes: [wxpay/app]`, `Path: /payments/health
            Method: GET
            PayloadFormatVersion: "2.0"
            Auth:
              Authorizer: NONE`, "auth", "public"},
		{"two scopes", "AuthorizationScopes: [wxpay/admin]", "AuthorizationScopes: [wxpay/admin, wxpay/app]", "auth", "AuthorizationScopes"},
		{"issuer not from parameter", "issuer: !Ref JwtIssuer", "issuer: https://issuer.example.com", "authorizer", "issuer"},
		{"no default authorizer", "        DefaultAuthorizer: JwtAuthorizer\n", "", "authorizer", "DefaultAuthorizer"},
		{"runtime", "Runtime: provided.al2023", "Runtime: provided.al2", "functions", "provided.al2023"},
		{"build method", "      BuildMethod: makefile\n", "      BuildMethod: go1.x\n", "functions", "makefile"},
		{"newer SAM property", "      Timeout: 300\n", "      Timeout: 300\n      RecursiveLoop: Terminate\n", "functions", "RecursiveLoop"},
		{"log group name", `!Sub "/aws/lambda/${CouponsFunction}"`, `!Sub "/aws/lambda/coupons"`, "functions", "CouponsFunction"},
		{"environment typo", "SECRET_ID: !Ref MerchantSecretArn", "SECRET: !Ref MerchantSecretArn", "environment", "SECRET_ID"},
		{"schedule input unknown field", `"scheduled_time":"<aws.scheduler.scheduled-time>"}'`, `"scheduled_time":"<aws.scheduler.scheduled-time>","force":true}'`, "schedule", "force"},
		{"schedule job", `{"job":"daily-bills"`, `{"job":"daily-bill"`, "schedule", "daily-bill"},
		{"schedule timezone", "ScheduleExpressionTimezone: Asia/Shanghai", "ScheduleExpressionTimezone: UTC", "schedule", "UTC"},
		{"schedule target", "Arn: !GetAtt BillingFunction.Arn", "Arn: !GetAtt PaymentsFunction.Arn", "schedule", "PaymentsFunction"},
		{"scheduler role invokes another function", "Resource: !GetAtt BillingFunction.Arn", "Resource: !GetAtt NotifyFunction.Arn", "scheduler-role", "NotifyFunction"},
		{"billing DLQ", "TargetArn: !GetAtt BillingDLQ.Arn", "TargetArn: !GetAtt EventBus.Arn", "billing", "DeadLetterQueue"},
		{"table TTL attribute", "AttributeName: expires_at", "AttributeName: ttl", "table", "expires_at"},
		{"GSI projection", "ProjectionType: ALL", "ProjectionType: KEYS_ONLY", "table", "KEYS_ONLY"},
		{"table key", "        - AttributeName: sk\n          KeyType: RANGE\n", "", "table", "KeySchema"},
		{"public bucket", "RestrictPublicBuckets: true", "RestrictPublicBuckets: false", "bucket", "RestrictPublicBuckets"},
		{"no TLS deny", `aws:SecureTransport: "false"`, `aws:SecureTransport: "true"`, "bucket", "SecureTransport"},
		{"missing output", "  BillsBucketName:\n", "  BucketName:\n", "outputs", "BillsBucketName"},
		{"API URL without stage", `/${Stage}/"`, `/"`, "outputs", "ApiUrl"},
		{"circular dependency", "        LOG_LEVEL: !Ref LogLevel\n", "        LOG_LEVEL: !Ref LogLevel\n        API_URL: !Sub \"https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}\"\n", "cycles", "HttpApi"},
		{"YAML 1.1 boolean", `Mode: "OFF"`, "Mode: OFF", "yaml11", "OFF"},
		{"default outside pattern", "    Default: dev\n", "    Default: Dev\n", "parameters", "Stage"},
		{"secret pattern", `secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$`, `secret:.*$`, "parameters", "MerchantSecretArn"},
		{"payscore sweep job", `{"job":"payscore-sweep"`, `{"job":"payscore-swept"`, "payscore-sweep", "payscore-swept"},
		{"payscore sweep input field", `{"job":"payscore-sweep","scheduled_time":"<aws.scheduler.scheduled-time>"}'`, `{"job":"payscore-sweep","scheduled_time":"<aws.scheduler.scheduled-time>","age":"1h"}'`, "payscore-sweep", "age"},
		{"payscore sweep target", "Arn: !GetAtt PayscoreFunction.Arn\n        RoleArn", "Arn: !GetAtt BillingFunction.Arn\n        RoleArn", "payscore-sweep", "PayscoreFunction"},
		{"payscore sweep rate", `"rate(15 minutes)"`, `"rate(6 hours)"`, "payscore-sweep", "rate(6 hours)"},
		{"payscore sweep timezone", "\"rate(15 minutes)\"\n      ScheduleExpressionTimezone: Asia/Shanghai", "\"rate(15 minutes)\"\n      ScheduleExpressionTimezone: UTC", "payscore-sweep", "UTC"},
		{"payscore sweep dead letters", "DeadLetterConfig:\n          Arn: !GetAtt PayscoreDLQ.Arn", "DeadLetterConfig:\n          Arn: !GetAtt BillingDLQ.Arn", "payscore-sweep", "DeadLetterConfig"},
		{"payscore function DLQ", "TargetArn: !GetAtt PayscoreDLQ.Arn", "TargetArn: !GetAtt BillingDLQ.Arn", "payscore-sweep", "DeadLetterQueue"},
		{"payscore event age", "MaximumEventAgeInSeconds: 900", "MaximumEventAgeInSeconds: 21600", "payscore-sweep", "EventInvokeConfig"},
		{"scheduler role cannot invoke payscore", "Resource: !GetAtt PayscoreFunction.Arn", "Resource: !GetAtt PaymentsFunction.Arn", "scheduler-role", "PayscoreFunction"},
		{"missing payscore DLQ output", "  PayscoreDLQUrl:\n", "  PayscoreQueueUrl:\n", "outputs", "PayscoreDLQUrl"},
		{"alarm on a metric no function writes", "MetricName: RefundPredictionDifferences", "MetricName: RefundPredictionDiffs", "alarms", "RefundPredictionDiffs"},
		{"alarm on an outcome notify never reports", "Value: store_error", "Value: storage_error", "alarms", "storage_error"},
		{"alarm on another function's metric", "          Value: payments\n", "          Value: billing\n", "alarms", `Function="billing"`},
		{"alarm on an unknown reconciliation status", "Value: not_configured", "Value: NOT_CONFIGURED", "alarms", "NOT_CONFIGURED"},
		{"DLQ without a depth alarm", "Value: !GetAtt PayscoreDLQ.QueueName", "Value: !GetAtt BillingDLQ.QueueName", "alarms", "PayscoreDLQ"},
		{"queue alarm on the ARN", "Value: !GetAtt BillingDLQ.QueueName", "Value: !GetAtt BillingDLQ.Arn", "alarms", "QueueName"},
		{"queue alarm that never fires", "      ComparisonOperator: GreaterThanThreshold\n      Threshold: 0\n", "      ComparisonOperator: GreaterThanThreshold\n      Threshold: 5\n", "alarms", "BillingDLQ"},
		{"metric math on an undefined id", `"FILL(failed, 0) + FILL(unconfigured, 0)"`, `"FILL(failed, 0) + FILL(unconfigurd, 0)"`, "alarms", "unconfigurd"},
		{"insights query without the Class dimension", `FROM SCHEMA("wxpay-serverless", Class, Function)`, `FROM SCHEMA("wxpay-serverless", Function)`, "alarms", "ReconciliationDifferences"},
		{"insights query without a period", "          Period: 3600\n          ReturnData: true", "          ReturnData: true", "alarms", "Period"},
		{"alarm actions ignore the topic condition", `AlarmActions: !If [HasAlarmTopic, [!Ref AlarmTopicArn], !Ref "AWS::NoValue"]`, "AlarmActions: [!Ref AlarmTopicArn]", "alarms", "AlarmActions"},
		{"missing data breaches", "TreatMissingData: notBreaching", "TreatMissingData: breaching", "alarms", "TreatMissingData"},
		{"no anomaly alarm", "Value: anomaly", "Value: accepted", "alarms", "anomaly"},
		{"alarm condition", `HasAlarmTopic: !Not [!Equals [!Ref AlarmTopicArn, ""]]`, `HasAlarmTopic: !Equals [!Ref AlarmTopicArn, ""]`, "alarms", "HasAlarmTopic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(src, tt.old) {
				t.Fatalf("template.yaml no longer contains %q; update this case", tt.old)
			}
			mutated := strings.Replace(src, tt.old, tt.new, 1)
			tpl, err := samtemplate.Parse([]byte(mutated))
			if err != nil {
				t.Fatalf("Parse(mutated: %q -> %q) error: %v", tt.old, tt.new, err)
			}
			got := runCheck(t, tt.check)(tpl, []byte(mutated))
			for _, p := range got {
				if strings.Contains(p, tt.want) {
					return
				}
			}
			t.Errorf("check %s after %q -> %q: got problems %q, want one containing %q", tt.check, tt.old, tt.new, got, tt.want)
		})
	}
}

// ---------------------------------------------------------------- helpers

type problems []string

func (p *problems) addf(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// dig follows map keys.
func dig(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func refIs(v any, name string) bool {
	got, ok := samtemplate.RefName(v)
	return ok && got == name
}

func getAttIs(v any, name string) bool {
	got, ok := samtemplate.GetAttName(v)
	return ok && got == name
}

func subIs(v any, tmpl string) bool {
	got, ok := samtemplate.SubTemplate(v)
	return ok && got == tmpl
}

// same compares scalars by their JSON text, so 90 (int) equals 90.
func same(v, want any) bool { return show(v) == show(want) }

func list(v any) []any {
	switch l := v.(type) {
	case nil:
		return nil
	case []any:
		return l
	}
	return []any{v}
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// resourceKey names a statement resource: Ref X -> X, GetAtt X.Y -> X.Y,
// Sub s -> s, a plain string as is.
func resourceKey(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if n, ok := samtemplate.RefName(v); ok {
		return n
	}
	if n, ok := samtemplate.GetAttName(v); ok {
		return n
	}
	if s, ok := samtemplate.SubTemplate(v); ok {
		return s
	}
	return show(v)
}

// grants lists "action on resource" pairs of the Allow statements.
func grants(stmts []samtemplate.Statement) map[string]bool {
	out := map[string]bool{}
	for _, st := range stmts {
		if st.Effect != "Allow" {
			continue
		}
		for _, a := range st.Actions {
			for _, r := range st.Resources {
				out[a+" on "+resourceKey(r)] = true
			}
		}
	}
	return out
}

func actionProblem(a string) string {
	if strings.Contains(a, "*") {
		return fmt.Sprintf("action %q is a wildcard", a)
	}
	if !regexp.MustCompile(`^[a-z0-9-]+:[A-Za-z0-9]+$`).MatchString(a) {
		return fmt.Sprintf("action %q is not a literal service:Action", a)
	}
	return ""
}

// resourceProblem accepts Ref, GetAtt and Sub resources; the only wildcard
// allowed is a final "/*" under a resource's own ARN (objects of our bucket,
// indexes of our table).
func resourceProblem(v any) string {
	if s, ok := v.(string); ok {
		if strings.Contains(s, "*") {
			return fmt.Sprintf("resource %q is a wildcard", s)
		}
		return ""
	}
	if _, ok := samtemplate.RefName(v); ok {
		return ""
	}
	if _, ok := samtemplate.GetAttName(v); ok {
		return ""
	}
	if s, ok := samtemplate.SubTemplate(v); ok {
		scoped := regexp.MustCompile(`^\$\{[A-Za-z0-9]+\.Arn\}(/[A-Za-z0-9_.-]+)*/\*$`)
		if strings.Contains(s, "*") && !scoped.MatchString(s) {
			return fmt.Sprintf("resource %q is a wildcard beyond ${Resource.Arn}/.../*", s)
		}
		return ""
	}
	return fmt.Sprintf("resource %s is neither a Ref, a GetAtt nor a Sub", show(v))
}

func principalIsWildcard(p any) bool {
	if p == "*" {
		return true
	}
	for _, v := range list(dig(p, "AWS")) {
		if v == "*" {
			return true
		}
	}
	return false
}

func knownAttributes(typ string) ([]string, bool) {
	switch typ {
	case "AWS::Serverless::Function", "AWS::Logs::LogGroup", "AWS::Scheduler::Schedule":
		return []string{"Arn"}, true
	case "AWS::Serverless::HttpApi":
		return []string{"ApiEndpoint", "ApiId"}, true
	case "AWS::DynamoDB::Table":
		return []string{"Arn", "StreamArn"}, true
	case "AWS::S3::Bucket":
		return []string{"Arn", "DomainName", "DualStackDomainName", "RegionalDomainName", "WebsiteURL"}, true
	case "AWS::SQS::Queue":
		return []string{"Arn", "QueueName", "QueueUrl"}, true
	case "AWS::Events::EventBus":
		return []string{"Arn", "Name", "Policy"}, true
	case "AWS::IAM::Role":
		return []string{"Arn", "RoleId"}, true
	}
	return nil, false
}

func isPseudoParameter(name string) bool {
	switch name {
	case "AWS::AccountId", "AWS::NotificationARNs", "AWS::NoValue", "AWS::Partition",
		"AWS::Region", "AWS::StackId", "AWS::StackName", "AWS::URLSuffix":
		return true
	}
	return false
}

// ---------------------------------------------------------------- checks

func checkParameters(tpl *samtemplate.Template, _ []byte) []string {
	var p problems
	if got := tpl.Raw["Transform"]; got != "AWS::Serverless-2016-10-31" {
		p.addf("Transform = %s, want AWS::Serverless-2016-10-31", show(got))
	}
	if d, _ := tpl.Raw["Description"].(string); strings.TrimSpace(d) == "" {
		p.addf("Description is empty, want a description of the stack")
	}
	params, _ := tpl.Raw["Parameters"].(map[string]any)
	want := []struct {
		name, typ string
		def       any // nil: no default, the deployer must answer
		values    []any
	}{
		{"Stage", "String", "dev", nil},
		{"MerchantSecretArn", "String", nil, nil},
		{"JwtIssuer", "String", nil, nil},
		{"JwtAudience", "CommaDelimitedList", nil, nil},
		{"WechatPayBaseURL", "String", coldstart.DefaultWechatPayBaseURL, nil},
		{"NotifyBaseURL", "String", "", nil},
		{"LogLevel", "String", "INFO", []any{"DEBUG", "INFO", "WARN", "ERROR"}},
		{"BillRetentionDays", "Number", 400, nil},
		{"BillScheduleState", "String", "ENABLED", []any{"ENABLED", "DISABLED"}},
	}
	for _, w := range want {
		pm, ok := params[w.name].(map[string]any)
		if !ok {
			p.addf("Parameters.%s is missing", w.name)
			continue
		}
		if pm["Type"] != w.typ {
			p.addf("Parameters.%s.Type = %s, want %s", w.name, show(pm["Type"]), w.typ)
		}
		def, hasDef := pm["Default"]
		switch {
		case w.def == nil && hasDef:
			p.addf("Parameters.%s.Default = %s, want none (the deployer must set it)", w.name, show(def))
		case w.def != nil && !same(def, w.def):
			p.addf("Parameters.%s.Default = %s, want %s", w.name, show(def), show(w.def))
		}
		if w.values != nil && !same(pm["AllowedValues"], w.values) {
			p.addf("Parameters.%s.AllowedValues = %s, want %s", w.name, show(pm["AllowedValues"]), show(w.values))
		}
	}
	// Every default must satisfy its own constraints, or deploying with
	// defaults fails.
	for _, name := range sortedKeysOf(params) {
		pm, _ := params[name].(map[string]any)
		def, hasDef := pm["Default"]
		if pat, ok := pm["AllowedPattern"].(string); ok {
			re, err := regexp.Compile(pat)
			if err != nil {
				p.addf("Parameters.%s.AllowedPattern %q does not compile: %v", name, pat, err)
				continue
			}
			if hasDef && !re.MatchString(fmt.Sprint(def)) {
				p.addf("Parameters.%s: Default %s does not match AllowedPattern %q", name, show(def), pat)
			}
		}
		if vals, ok := pm["AllowedValues"].([]any); ok && hasDef && !slices.ContainsFunc(vals, func(v any) bool { return same(v, def) }) {
			p.addf("Parameters.%s: Default %s is not in AllowedValues %s", name, show(def), show(vals))
		}
	}
	pat, _ := dig(params, "MerchantSecretArn", "AllowedPattern").(string)
	re, err := regexp.Compile(pat)
	if pat == "" || err != nil {
		p.addf("Parameters.MerchantSecretArn.AllowedPattern = %q (%v), want a pattern for a Secrets Manager ARN", pat, err)
		return p
	}
	for _, tc := range []struct {
		arn  string
		want bool
	}{
		{"arn:aws:secretsmanager:ap-east-1:123456789012:secret:wxpay/merchant-AbC123", true},
		{"arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:wxpay-dev-a1B2c3", true},
		{"wxpay/merchant", false},
		{"arn:aws:secretsmanager:ap-east-1:123456789012:secret:*", false},
		{"arn:aws:s3:::wxpay-merchant-AbC123", false},
	} {
		if got := re.MatchString(tc.arn); got != tc.want {
			p.addf("Parameters.MerchantSecretArn.AllowedPattern %q on %q: match = %v, want %v", pat, tc.arn, got, tc.want)
		}
	}
	return p
}

func sortedKeysOf(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func checkFunctions(tpl *samtemplate.Template, _ []byte) []string {
	var p problems
	want := map[string]struct{ timeout, memory int }{
		fnNotify: {15, 256}, fnPayscore: {15, 256}, fnCoupons: {15, 256}, fnPayments: {15, 256}, fnBilling: {300, 512},
	}
	wantIDs := []string{fnNotify, fnPayscore, fnCoupons, fnPayments, fnBilling}
	slices.Sort(wantIDs)
	if got := tpl.FunctionIDs(); !slices.Equal(got, wantIDs) {
		p.addf("functions = %q, want %q", got, wantIDs)
	}
	logGroups := map[string][]samtemplate.Resource{}
	for _, id := range resourceIDs(tpl) {
		r := tpl.Resources[id]
		if r.Type != "AWS::Logs::LogGroup" {
			continue
		}
		s, _ := samtemplate.SubTemplate(r.Properties["LogGroupName"])
		logGroups[s] = append(logGroups[s], r)
	}
	for _, id := range []string{fnNotify, fnPayscore, fnCoupons, fnPayments, fnBilling} {
		f, ok := tpl.Function(id)
		if !ok {
			p.addf("%s: missing or not an AWS::Serverless::Function", id)
			continue
		}
		for _, c := range []struct{ field, got, want string }{
			{"CodeUri", f.CodeURI, "."},
			{"Metadata.BuildMethod", f.BuildMethod, "makefile"},
			{"Runtime", f.Runtime, "provided.al2023"},
			{"Handler", f.Handler, "bootstrap"},
			{"Tracing", f.Tracing, "Active"},
		} {
			if c.got != c.want {
				p.addf("%s: %s = %q, want %q", id, c.field, c.got, c.want)
			}
		}
		if !slices.Equal(f.Architectures, []string{"arm64"}) {
			p.addf("%s: Architectures = %q, want [arm64]", id, f.Architectures)
		}
		if f.Timeout != want[id].timeout || f.MemorySize != want[id].memory {
			p.addf("%s: Timeout, MemorySize = %d, %d, want %d, %d", id, f.Timeout, f.MemorySize, want[id].timeout, want[id].memory)
		}
		// Properties newer than the SAM schemas the project supports.
		for _, prop := range []string{"LoggingConfig", "RecursiveLoop"} {
			if _, ok := f.Properties[prop]; ok {
				p.addf("%s: uses %s, want an AWS::Logs::LogGroup and no properties newer than old SAM schemas", id, prop)
			}
		}
		name := "/aws/lambda/${" + id + "}"
		switch lg := logGroups[name]; {
		case len(lg) != 1:
			p.addf("%s: %d AWS::Logs::LogGroup with LogGroupName !Sub %q, want 1", id, len(lg), name)
		case !same(lg[0].Properties["RetentionInDays"], 90):
			p.addf("%s: log group RetentionInDays = %s, want 90", id, show(lg[0].Properties["RetentionInDays"]))
		}
	}
	return p
}

func resourceIDs(tpl *samtemplate.Template) []string {
	ids := make([]string, 0, len(tpl.Resources))
	for id := range tpl.Resources {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func checkEnvironment(tpl *samtemplate.Template, _ []byte) []string {
	var p problems
	base := map[string]string{
		coldstart.EnvTableName:        "Table",
		coldstart.EnvSecretID:         "MerchantSecretArn",
		coldstart.EnvWechatPayBaseURL: "WechatPayBaseURL",
		coldstart.EnvNotifyBaseURL:    "NotifyBaseURL",
		coldstart.EnvLogLevel:         "LogLevel",
	}
	extra := map[string]map[string]string{
		fnNotify:   {coldstart.EnvEventBusName: "EventBus"},
		fnPayscore: {coldstart.EnvEventBusName: "EventBus"}, // the sweep drains the outbox
		fnBilling:  {coldstart.EnvBillsBucket: "BillsBucket"},
	}
	for _, id := range []string{fnNotify, fnPayscore, fnCoupons, fnPayments, fnBilling} {
		f, ok := tpl.Function(id)
		if !ok {
			p.addf("%s: missing", id)
			continue
		}
		want := map[string]string{}
		for k, v := range base {
			want[k] = v
		}
		for k, v := range extra[id] {
			want[k] = v
		}
		for _, k := range sortedKeysOf(f.Environment) {
			if _, ok := want[k]; !ok {
				p.addf("%s: environment variable %s = %s is not read by shared/coldstart", id, k, show(f.Environment[k]))
			}
		}
		keys := make([]string, 0, len(want))
		for k := range want {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			got, ok := f.Environment[k]
			switch {
			case !ok:
				p.addf("%s: environment variable %s missing, want !Ref %s", id, k, want[k])
			case !refIs(got, want[k]):
				p.addf("%s: environment variable %s = %s, want !Ref %s", id, k, show(got), want[k])
			}
		}
	}
	return p
}

type routeKey struct{ method, path, function, scope string }

func (k routeKey) String() string {
	return fmt.Sprintf("%s %s -> %s (scope %q)", k.method, k.path, k.function, k.scope)
}

func checkRoutes(tpl *samtemplate.Template, _ []byte) []string {
	var p problems
	handlers := []struct {
		function string
		routes   []apigw.Route
	}{
		{fnNotify, notify.New(app.Deps{}).Routes()},
		{fnPayscore, payscore.New(app.Deps{}).Routes()},
		{fnCoupons, coupons.New(app.Deps{}).Routes()},
		{fnPayments, payments.New(app.Deps{}).Routes()},
		{fnBilling, billing.New(app.Deps{}).Routes()},
	}
	want := map[routeKey]bool{}
	for _, h := range handlers {
		for _, r := range h.routes {
			want[routeKey{r.Method, r.Path, h.function, string(r.Scope)}] = true
		}
	}
	got := map[routeKey]bool{}
	owner := map[string]string{}
	for _, r := range tpl.Routes {
		scope := string(apigw.ScopeNone)
		if !r.Public {
			scope = strings.Join(r.Scopes, " ")
		}
		got[routeKey{r.Method, r.Path, r.Function, scope}] = true
		if prev, dup := owner[r.Key()]; dup {
			p.addf("duplicate route %s: events in %s and %s.%s", r.Key(), prev, r.Function, r.Event)
		}
		owner[r.Key()] = r.Function + "." + r.Event
		if _, ok := tpl.Function(r.Function); !ok {
			p.addf("route %s: function %s does not exist", r.Key(), r.Function)
		}
		if r.API != "HttpApi" {
			p.addf("route %s (%s.%s): ApiId refers to %q, want !Ref HttpApi", r.Key(), r.Function, r.Event, r.API)
		}
		if r.PayloadFormatVersion != "2.0" {
			p.addf("route %s (%s.%s): PayloadFormatVersion = %q, want the string \"2.0\"", r.Key(), r.Function, r.Event, r.PayloadFormatVersion)
		}
	}
	for _, k := range sortedRouteKeys(want) {
		if !got[k] {
			p.addf("route %s is in the Go handlers but not in template.yaml", k)
		}
	}
	for _, k := range sortedRouteKeys(got) {
		if !want[k] {
			p.addf("route %s is in template.yaml but not in the Go handlers", k)
		}
	}
	return p
}

func sortedRouteKeys(m map[routeKey]bool) []routeKey {
	out := make([]routeKey, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func checkAuth(tpl *samtemplate.Template, _ []byte) []string {
	var p problems
	var public []string
	for _, r := range tpl.Routes {
		if r.Public {
			public = append(public, r.Key()+" -> "+r.Function)
			continue
		}
		if r.Authorizer != jwtAuthorizer {
			p.addf("route %s (%s.%s): Auth.Authorizer = %q, want %s", r.Key(), r.Function, r.Event, r.Authorizer, jwtAuthorizer)
		}
		if len(r.Scopes) != 1 || (r.Scopes[0] != string(apigw.ScopeApp) && r.Scopes[0] != string(apigw.ScopeAdmin)) {
			p.addf("route %s (%s.%s): AuthorizationScopes = %q, want exactly one of %s, %s", r.Key(), r.Function, r.Event, r.Scopes, apigw.ScopeApp, apigw.ScopeAdmin)
		}
	}
	if want := []string{"POST /notify/{channel} -> " + fnNotify}; !slices.Equal(public, want) {
		p.addf("public routes (Authorizer NONE) = %q, want %q", public, want)
	}
	return p
}

func checkAuthorizer(tpl *samtemplate.Template, _ []byte) []string {
	var p problems
	api, ok := tpl.Resources["HttpApi"]
	if !ok || api.Type != samtemplate.TypeHTTPAPI {
		return []string{fmt.Sprintf("HttpApi: type %q, want %s", api.Type, samtemplate.TypeHTTPAPI)}
	}
	if !refIs(api.Properties["StageName"], "Stage") {
		p.addf("HttpApi.StageName = %s, want !Ref Stage", show(api.Properties["StageName"]))
	}
	auth, _ := api.Properties["Auth"].(map[string]any)
	if auth["DefaultAuthorizer"] != jwtAuthorizer {
		p.addf("HttpApi.Auth.DefaultAuthorizer = %s, want %s", show(auth["DefaultAuthorizer"]), jwtAuthorizer)
	}
	authorizers, _ := auth["Authorizers"].(map[string]any)
	if names := sortedKeysOf(authorizers); !slices.Equal(names, []string{jwtAuthorizer}) {
		p.addf("HttpApi.Auth.Authorizers = %q, want [%s]", names, jwtAuthorizer)
	}
	jwt, _ := authorizers[jwtAuthorizer].(map[string]any)
	if jwt["IdentitySource"] != "$request.header.Authorization" {
		p.addf("JwtAuthorizer.IdentitySource = %s, want $request.header.Authorization", show(jwt["IdentitySource"]))
	}
	cfg, _ := jwt["JwtConfiguration"].(map[string]any)
	// SAM copies JwtConfiguration into the OpenAPI body, whose keys are
	// lower case.
	if !refIs(cfg["issuer"], "JwtIssuer") {
		p.addf("JwtAuthorizer.JwtConfiguration.issuer = %s, want !Ref JwtIssuer", show(cfg["issuer"]))
	}
	if !refIs(cfg["audience"], "JwtAudience") {
		p.addf("JwtAuthorizer.JwtConfiguration.audience = %s, want !Ref JwtAudience", show(cfg["audience"]))
	}
	settings, _ := api.Properties["DefaultRouteSettings"].(map[string]any)
	for _, k := range []string{"ThrottlingBurstLimit", "ThrottlingRateLimit"} {
		if n, ok := settings[k].(int); !ok || n <= 0 {
			p.addf("HttpApi.DefaultRouteSettings.%s = %s, want a positive number", k, show(settings[k]))
		}
	}
	return p
}

// functionGrants are the allowed and the required "action on resource"
// pairs of a function's own policy statements.
func functionGrants(id string) (allowed, required map[string]bool) {
	required = map[string]bool{"secretsmanager:GetSecretValue on MerchantSecretArn": true}
	for _, a := range []string{"GetItem", "PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem", "Query"} {
		required["dynamodb:"+a+" on Table.Arn"] = true
		required["dynamodb:"+a+" on ${Table.Arn}/index/*"] = true
	}
	switch id {
	case fnNotify, fnPayscore:
		// notify publishes what it commits; the payscore sweep drains
		// the outbox of events whose publish failed.
		required["events:PutEvents on EventBus.Arn"] = true
	case fnBilling:
		required["s3:PutObject on ${BillsBucket.Arn}/*"] = true
		required["s3:GetObject on ${BillsBucket.Arn}/*"] = true
		required["s3:AbortMultipartUpload on ${BillsBucket.Arn}/*"] = true // raw bills stream up in parts
	}
	allowed = map[string]bool{}
	for k := range required {
		allowed[k] = true
	}
	if id == fnBilling {
		// SAM grants this for DeadLetterQueue; an explicit grant is fine.
		allowed["sqs:SendMessage on BillingDLQ.Arn"] = true
	}
	return allowed, required
}

func checkIAM(tpl *samtemplate.Template, _ []byte) []string {
	var p problems
	for _, id := range []string{fnNotify, fnPayscore, fnCoupons, fnPayments, fnBilling} {
		f, ok := tpl.Function(id)
		if !ok {
			p.addf("%s: missing", id)
			continue
		}
		for _, o := range f.OtherPolicies {
			p.addf("%s: Policies entry %s is not an inline policy document (SAM policy templates and managed policies grant more than the function needs)", id, show(o))
		}
		for _, st := range f.Statements {
			if st.Effect != "Allow" {
				p.addf("%s: statement %q has Effect %q, want Allow", id, st.Sid, st.Effect)
			}
			if len(st.NotActions) > 0 || len(st.NotResources) > 0 {
				p.addf("%s: statement %q uses NotAction/NotResource", id, st.Sid)
			}
			for _, a := range st.Actions {
				if msg := actionProblem(a); msg != "" {
					p.addf("%s: statement %q: %s", id, st.Sid, msg)
				}
			}
			for _, r := range st.Resources {
				if msg := resourceProblem(r); msg != "" {
					p.addf("%s: statement %q: %s", id, st.Sid, msg)
				}
			}
		}
		got := grants(f.Statements)
		allowed, required := functionGrants(id)
		for _, g := range sortedSet(got) {
			if !allowed[g] {
				p.addf("%s: grants %s, which is not in its allowed set %q", id, g, sortedSet(allowed))
			}
		}
		for _, g := range sortedSet(required) {
			if !got[g] {
				p.addf("%s: lacks %s", id, g)
			}
		}
	}
	// Every Allow statement of every policy document in the template.
	walkPolicies(tpl.Raw, "", func(path string, st samtemplate.Statement) {
		if st.Effect != "Allow" {
			return
		}
		for _, a := range st.Actions {
			if msg := actionProblem(a); msg != "" {
				p.addf("%s: %s", path, msg)
			}
		}
		for _, r := range st.Resources {
			if msg := resourceProblem(r); msg != "" {
				p.addf("%s: %s", path, msg)
			}
		}
		if principalIsWildcard(st.Principal) {
			p.addf("%s: Allow statement with Principal *", path)
		}
	})
	return p
}

// walkPolicies calls fn for each statement of each mapping with a Statement
// key (IAM policy documents) anywhere under v.
func walkPolicies(v any, path string, fn func(path string, st samtemplate.Statement)) {
	switch n := v.(type) {
	case []any:
		for i, e := range n {
			walkPolicies(e, fmt.Sprintf("%s[%d]", path, i), fn)
		}
	case map[string]any:
		if _, ok := n["Statement"]; ok {
			for i, st := range samtemplate.PolicyStatements(n) {
				fn(fmt.Sprintf("%s.Statement[%d]", path, i), st)
			}
			return
		}
		for _, k := range sortedKeysOf(n) {
			walkPolicies(n[k], strings.TrimPrefix(path+"."+k, "."), fn)
		}
	}
}

func checkSchedulerRole(tpl *samtemplate.Template, _ []byte) []string {
	var p problems
	role, ok := tpl.Resources["SchedulerRole"]
	if !ok || role.Type != "AWS::IAM::Role" {
		return []string{fmt.Sprintf("SchedulerRole: type %q, want AWS::IAM::Role", role.Type)}
	}
	trust := samtemplate.PolicyStatements(role.Properties["AssumeRolePolicyDocument"])
	if len(trust) != 1 {
		p.addf("SchedulerRole trust policy has %d statements, want 1", len(trust))
	}
	for _, st := range trust {
		if st.Effect != "Allow" || !slices.Equal(st.Actions, []string{"sts:AssumeRole"}) || !same(list(dig(st.Principal, "Service")), []any{"scheduler.amazonaws.com"}) {
			p.addf("SchedulerRole trust statement: Effect %q, Action %q, Principal %s; want Allow sts:AssumeRole by scheduler.amazonaws.com", st.Effect, st.Actions, show(st.Principal))
		}
		if !refIs(dig(st.Condition, "StringEquals", "aws:SourceAccount"), "AWS::AccountId") {
			p.addf("SchedulerRole trust statement: Condition %s, want StringEquals aws:SourceAccount !Ref AWS::AccountId", show(st.Condition))
		}
	}
	if m, ok := role.Properties["ManagedPolicyArns"]; ok {
		p.addf("SchedulerRole.ManagedPolicyArns = %s, want none", show(m))
	}
	var stmts []samtemplate.Statement
	for _, pol := range list(role.Properties["Policies"]) {
		stmts = append(stmts, samtemplate.PolicyStatements(dig(pol, "PolicyDocument"))...)
	}
	got := grants(stmts)
	want := map[string]bool{"lambda:InvokeFunction on BillingFunction.Arn": true, "sqs:SendMessage on BillingDLQ.Arn": true,
		"lambda:InvokeFunction on PayscoreFunction.Arn": true, "sqs:SendMessage on PayscoreDLQ.Arn": true}
	if !slices.Equal(sortedSet(got), sortedSet(want)) {
		p.addf("SchedulerRole grants %q, want exactly %q", sortedSet(got), sortedSet(want))
	}
	return p
}

func checkSchedule(tpl *samtemplate.Template, _ []byte) []string {
	var p problems
	s, ok := tpl.Resources["BillingSchedule"]
	if !ok || s.Type != "AWS::Scheduler::Schedule" {
		return []string{fmt.Sprintf("BillingSchedule: type %q, want AWS::Scheduler::Schedule", s.Type)}
	}
	props := s.Properties
	for _, c := range []struct {
		field string
		got   any
		want  string
	}{
		{"ScheduleExpression", props["ScheduleExpression"], "cron(0 10 * * ? *)"},
		{"ScheduleExpressionTimezone", props["ScheduleExpressionTimezone"], "Asia/Shanghai"},
		{"FlexibleTimeWindow.Mode", dig(props, "FlexibleTimeWindow", "Mode"), "OFF"},
	} {
		if c.got != c.want {
			p.addf("BillingSchedule.%s = %s, want %q", c.field, show(c.got), c.want)
		}
	}
	if !refIs(props["State"], "BillScheduleState") {
		p.addf("BillingSchedule.State = %s, want !Ref BillScheduleState", show(props["State"]))
	}
	target, _ := props["Target"].(map[string]any)
	if !getAttIs(target["Arn"], fnBilling+".Arn") {
		p.addf("BillingSchedule.Target.Arn = %s, want !GetAtt %s.Arn", show(target["Arn"]), fnBilling)
	}
	if !getAttIs(target["RoleArn"], "SchedulerRole.Arn") {
		p.addf("BillingSchedule.Target.RoleArn = %s, want !GetAtt SchedulerRole.Arn", show(target["RoleArn"]))
	}
	if !getAttIs(dig(target, "DeadLetterConfig", "Arn"), "BillingDLQ.Arn") {
		p.addf("BillingSchedule.Target.DeadLetterConfig = %s, want Arn !GetAtt BillingDLQ.Arn", show(target["DeadLetterConfig"]))
	}
	retry, _ := target["RetryPolicy"].(map[string]any)
	for _, k := range []string{"MaximumRetryAttempts", "MaximumEventAgeInSeconds"} {
		if n, ok := retry[k].(int); !ok || n <= 0 {
			p.addf("BillingSchedule.Target.RetryPolicy.%s = %s, want a positive number", k, show(retry[k]))
		}
	}
	input, ok := target["Input"].(string)
	if !ok {
		p.addf("BillingSchedule.Target.Input = %s, want a JSON string", show(target["Input"]))
		return p
	}
	dec := json.NewDecoder(strings.NewReader(input))
	dec.DisallowUnknownFields()
	var in billing.ScheduleInput
	if err := dec.Decode(&in); err != nil {
		p.addf("BillingSchedule.Target.Input %q does not decode strictly into billing.ScheduleInput: %v", input, err)
		return p
	}
	if dec.More() {
		p.addf("BillingSchedule.Target.Input %q has data after the JSON object", input)
	}
	if in.Job != billing.JobDailyBills {
		p.addf("BillingSchedule.Target.Input job = %q, want %q", in.Job, billing.JobDailyBills)
	}
	if in.ScheduledTime != "<aws.scheduler.scheduled-time>" {
		p.addf("BillingSchedule.Target.Input scheduled_time = %q, want the <aws.scheduler.scheduled-time> context attribute", in.ScheduledTime)
	}
	var ev billing.Event
	if err := json.Unmarshal([]byte(input), &ev); err != nil || ev.Schedule == nil {
		p.addf("BillingSchedule.Target.Input %q as billing.Event: schedule %v, error %v; want a schedule input", input, ev.Schedule, err)
	}
	return p
}

func checkBilling(tpl *samtemplate.Template, _ []byte) []string {
	var p problems
	f, ok := tpl.Function(fnBilling)
	if !ok {
		return []string{fnBilling + ": missing"}
	}
	dlq := f.Properties["DeadLetterQueue"]
	if dig(dlq, "Type") != "SQS" || !getAttIs(dig(dlq, "TargetArn"), "BillingDLQ.Arn") {
		p.addf("%s.DeadLetterQueue = %s, want Type SQS, TargetArn !GetAtt BillingDLQ.Arn", fnBilling, show(dlq))
	}
	eic := f.Properties["EventInvokeConfig"]
	if !same(dig(eic, "MaximumRetryAttempts"), 2) || !same(dig(eic, "MaximumEventAgeInSeconds"), 21600) {
		p.addf("%s.EventInvokeConfig = %s, want MaximumRetryAttempts 2, MaximumEventAgeInSeconds 21600", fnBilling, show(eic))
	}
	q, ok := tpl.Resources["BillingDLQ"]
	if !ok || q.Type != "AWS::SQS::Queue" {
		p.addf("BillingDLQ: type %q, want AWS::SQS::Queue", q.Type)
	}
	if q.Properties["SqsManagedSseEnabled"] != true || !same(q.Properties["MessageRetentionPeriod"], 1209600) {
		p.addf("BillingDLQ: SqsManagedSseEnabled %s, MessageRetentionPeriod %s; want true, 1209600",
			show(q.Properties["SqsManagedSseEnabled"]), show(q.Properties["MessageRetentionPeriod"]))
	}
	found := false
	for _, id := range resourceIDs(tpl) {
		r := tpl.Resources[id]
		if r.Type != "AWS::SQS::QueuePolicy" || !slices.ContainsFunc(list(r.Properties["Queues"]), func(v any) bool { return refIs(v, "BillingDLQ") }) {
			continue
		}
		for _, st := range samtemplate.PolicyStatements(r.Properties["PolicyDocument"]) {
			if st.Effect == "Allow" && same(list(dig(st.Principal, "Service")), []any{"scheduler.amazonaws.com"}) &&
				slices.Contains(st.Actions, "sqs:SendMessage") && len(st.Resources) == 1 && getAttIs(st.Resources[0], "BillingDLQ.Arn") {
				found = true
			}
		}
	}
	if !found {
		p.addf("no AWS::SQS::QueuePolicy on BillingDLQ allows scheduler.amazonaws.com sqs:SendMessage")
	}
	return p
}

// schedulerMayDeadLetter reports whether a queue policy lets EventBridge
// Scheduler send to queue.
func schedulerMayDeadLetter(tpl *samtemplate.Template, queue string) bool {
	for _, id := range resourceIDs(tpl) {
		r := tpl.Resources[id]
		if r.Type != "AWS::SQS::QueuePolicy" || !slices.ContainsFunc(list(r.Properties["Queues"]), func(v any) bool { return refIs(v, queue) }) {
			continue
		}
		for _, st := range samtemplate.PolicyStatements(r.Properties["PolicyDocument"]) {
			if st.Effect == "Allow" && same(list(dig(st.Principal, "Service")), []any{"scheduler.amazonaws.com"}) &&
				slices.Contains(st.Actions, "sqs:SendMessage") && len(st.Resources) == 1 && getAttIs(st.Resources[0], queue+".Arn") {
				return true
			}
		}
	}
	return false
}

// checkPayscoreSweep: the missed-callback sweep runs on a schedule well
// inside payscore.DefaultSweepAge, in Asia/Shanghai, with an input the
// payscore function decodes strictly; the function and the schedule
// dead-letter to PayscoreDLQ and stale sweep events are dropped early.
func checkPayscoreSweep(tpl *samtemplate.Template, _ []byte) []string {
	var p problems
	f, ok := tpl.Function(fnPayscore)
	if !ok {
		return []string{fnPayscore + ": missing"}
	}
	dlq := f.Properties["DeadLetterQueue"]
	if dig(dlq, "Type") != "SQS" || !getAttIs(dig(dlq, "TargetArn"), "PayscoreDLQ.Arn") {
		p.addf("%s.DeadLetterQueue = %s, want Type SQS, TargetArn !GetAtt PayscoreDLQ.Arn", fnPayscore, show(dlq))
	}
	eic := f.Properties["EventInvokeConfig"]
	retries, _ := dig(eic, "MaximumRetryAttempts").(int)
	age, _ := dig(eic, "MaximumEventAgeInSeconds").(int)
	if retries < 1 || retries > 2 || age < 60 || age > 900 {
		p.addf("%s.EventInvokeConfig = %s, want 1-2 retries and an event age of at most 900 s (the next sweep is due by then)", fnPayscore, show(eic))
	}
	q, ok := tpl.Resources["PayscoreDLQ"]
	if !ok || q.Type != "AWS::SQS::Queue" || q.Properties["SqsManagedSseEnabled"] != true || !same(q.Properties["MessageRetentionPeriod"], 1209600) {
		p.addf("PayscoreDLQ: %s %s, want an AWS::SQS::Queue with SqsManagedSseEnabled and 14 days retention", q.Type, show(q.Properties))
	}
	if !schedulerMayDeadLetter(tpl, "PayscoreDLQ") {
		p.addf("no AWS::SQS::QueuePolicy on PayscoreDLQ allows scheduler.amazonaws.com sqs:SendMessage")
	}
	s, ok := tpl.Resources["PayscoreSweepSchedule"]
	if !ok || s.Type != "AWS::Scheduler::Schedule" {
		return append(p, fmt.Sprintf("PayscoreSweepSchedule: type %q, want AWS::Scheduler::Schedule", s.Type))
	}
	props := s.Properties
	expr, _ := props["ScheduleExpression"].(string)
	m := regexp.MustCompile(`^rate\((\d+) minutes?\)$`).FindStringSubmatch(expr)
	if m == nil {
		p.addf("PayscoreSweepSchedule.ScheduleExpression = %q, want rate(N minutes)", expr)
	} else if n, err := strconv.Atoi(m[1]); err != nil || n < 1 || time.Duration(n)*time.Minute > payscore.DefaultSweepAge/4 {
		p.addf("PayscoreSweepSchedule.ScheduleExpression = %q, want at least 4 runs per payscore.DefaultSweepAge (%v)", expr, payscore.DefaultSweepAge)
	}
	if got := props["ScheduleExpressionTimezone"]; got != "Asia/Shanghai" {
		p.addf("PayscoreSweepSchedule.ScheduleExpressionTimezone = %s, want Asia/Shanghai", show(got))
	}
	if got := dig(props, "FlexibleTimeWindow", "Mode"); got != "OFF" {
		p.addf("PayscoreSweepSchedule.FlexibleTimeWindow.Mode = %s, want OFF", show(got))
	}
	target, _ := props["Target"].(map[string]any)
	if !getAttIs(target["Arn"], fnPayscore+".Arn") {
		p.addf("PayscoreSweepSchedule.Target.Arn = %s, want !GetAtt %s.Arn", show(target["Arn"]), fnPayscore)
	}
	if !getAttIs(target["RoleArn"], "SchedulerRole.Arn") {
		p.addf("PayscoreSweepSchedule.Target.RoleArn = %s, want !GetAtt SchedulerRole.Arn", show(target["RoleArn"]))
	}
	if !getAttIs(dig(target, "DeadLetterConfig", "Arn"), "PayscoreDLQ.Arn") {
		p.addf("PayscoreSweepSchedule.Target.DeadLetterConfig = %s, want Arn !GetAtt PayscoreDLQ.Arn", show(target["DeadLetterConfig"]))
	}
	for _, k := range []string{"MaximumRetryAttempts", "MaximumEventAgeInSeconds"} {
		if n, ok := dig(target, "RetryPolicy", k).(int); !ok || n <= 0 {
			p.addf("PayscoreSweepSchedule.Target.RetryPolicy.%s = %s, want a positive number", k, show(dig(target, "RetryPolicy", k)))
		}
	}
	input, _ := target["Input"].(string)
	dec := json.NewDecoder(strings.NewReader(input))
	dec.DisallowUnknownFields()
	var in payscore.ScheduleInput
	if err := dec.Decode(&in); err != nil || dec.More() {
		p.addf("PayscoreSweepSchedule.Target.Input %q does not decode strictly into payscore.ScheduleInput: %v", input, err)
		return p
	}
	if in.Job != payscore.JobSweep {
		p.addf("PayscoreSweepSchedule.Target.Input job = %q, want %q", in.Job, payscore.JobSweep)
	}
	if in.ScheduledTime != "<aws.scheduler.scheduled-time>" {
		p.addf("PayscoreSweepSchedule.Target.Input scheduled_time = %q, want the <aws.scheduler.scheduled-time> context attribute", in.ScheduledTime)
	}
	var ev payscore.Event
	if err := json.Unmarshal([]byte(input), &ev); err != nil || ev.Schedule == nil {
		p.addf("PayscoreSweepSchedule.Target.Input %q as payscore.Event: %v; want a schedule input", input, err)
	}
	return p
}

func checkTable(tpl *samtemplate.Template, _ []byte) []string {
	var p problems
	r, ok := tpl.Resources["Table"]
	if !ok || r.Type != "AWS::DynamoDB::Table" {
		return []string{fmt.Sprintf("Table: type %q, want AWS::DynamoDB::Table", r.Type)}
	}
	for _, k := range []string{"DeletionPolicy", "UpdateReplacePolicy"} {
		if r.Raw[k] != "Retain" {
			p.addf("Table.%s = %s, want Retain", k, show(r.Raw[k]))
		}
	}
	schema := ddbstore.TableSchema("x")
	props := r.Properties
	if got, want := props["BillingMode"], string(schema.BillingMode); got != want {
		p.addf("Table.BillingMode = %s, want %s (ddbstore.TableSchema)", show(got), want)
	}
	var wantAttrs []string
	for _, a := range schema.AttributeDefinitions {
		wantAttrs = append(wantAttrs, aws.ToString(a.AttributeName)+":"+string(a.AttributeType))
	}
	var gotAttrs []string
	for _, a := range list(props["AttributeDefinitions"]) {
		gotAttrs = append(gotAttrs, fmt.Sprint(dig(a, "AttributeName"))+":"+fmt.Sprint(dig(a, "AttributeType")))
	}
	sort.Strings(wantAttrs)
	sort.Strings(gotAttrs)
	if !slices.Equal(gotAttrs, wantAttrs) {
		p.addf("Table.AttributeDefinitions = %q, want %q (ddbstore.TableSchema)", gotAttrs, wantAttrs)
	}
	keys := func(v any) []string {
		var out []string
		for _, k := range list(v) {
			out = append(out, fmt.Sprint(dig(k, "AttributeName"))+":"+fmt.Sprint(dig(k, "KeyType")))
		}
		return out
	}
	var wantKeys []string
	for _, k := range schema.KeySchema {
		wantKeys = append(wantKeys, aws.ToString(k.AttributeName)+":"+string(k.KeyType))
	}
	if got := keys(props["KeySchema"]); !slices.Equal(got, wantKeys) {
		p.addf("Table.KeySchema = %q, want %q (ddbstore.TableSchema)", got, wantKeys)
	}
	var wantGSI, gotGSI []string
	for _, g := range schema.GlobalSecondaryIndexes {
		var ks []string
		for _, k := range g.KeySchema {
			ks = append(ks, aws.ToString(k.AttributeName)+":"+string(k.KeyType))
		}
		wantGSI = append(wantGSI, fmt.Sprintf("%s %v %s %v", aws.ToString(g.IndexName), ks, g.Projection.ProjectionType, g.Projection.NonKeyAttributes))
	}
	for _, g := range list(props["GlobalSecondaryIndexes"]) {
		var nonKey []string
		for _, a := range list(dig(g, "Projection", "NonKeyAttributes")) {
			nonKey = append(nonKey, fmt.Sprint(a))
		}
		gotGSI = append(gotGSI, fmt.Sprintf("%v %v %v %v", dig(g, "IndexName"), keys(dig(g, "KeySchema")), dig(g, "Projection", "ProjectionType"), nonKey))
	}
	sort.Strings(wantGSI)
	sort.Strings(gotGSI)
	if !slices.Equal(gotGSI, wantGSI) {
		p.addf("Table.GlobalSecondaryIndexes = %q, want %q (ddbstore.TableSchema)", gotGSI, wantGSI)
	}
	ttl := props["TimeToLiveSpecification"]
	if dig(ttl, "AttributeName") != ddbstore.AttrExpiresAt || dig(ttl, "Enabled") != true {
		p.addf("Table.TimeToLiveSpecification = %s, want AttributeName %s, Enabled true", show(ttl), ddbstore.AttrExpiresAt)
	}
	if got := dig(props, "PointInTimeRecoverySpecification", "PointInTimeRecoveryEnabled"); got != true {
		p.addf("Table.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled = %s, want true", show(got))
	}
	if got := dig(props, "SSESpecification", "SSEEnabled"); got != true {
		p.addf("Table.SSESpecification.SSEEnabled = %s, want true", show(got))
	}
	return p
}

func checkBucket(tpl *samtemplate.Template, _ []byte) []string {
	var p problems
	b, ok := tpl.Resources["BillsBucket"]
	if !ok || b.Type != "AWS::S3::Bucket" {
		return []string{fmt.Sprintf("BillsBucket: type %q, want AWS::S3::Bucket", b.Type)}
	}
	if b.Raw["DeletionPolicy"] != "Retain" {
		p.addf("BillsBucket.DeletionPolicy = %s, want Retain", show(b.Raw["DeletionPolicy"]))
	}
	props := b.Properties
	enc := list(dig(props, "BucketEncryption", "ServerSideEncryptionConfiguration"))
	if len(enc) != 1 || dig(enc[0], "ServerSideEncryptionByDefault", "SSEAlgorithm") != "AES256" {
		p.addf("BillsBucket.BucketEncryption = %s, want SSE-S3 (AES256)", show(props["BucketEncryption"]))
	}
	for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
		if got := dig(props, "PublicAccessBlockConfiguration", k); got != true {
			p.addf("BillsBucket.PublicAccessBlockConfiguration.%s = %s, want true", k, show(got))
		}
	}
	if got := dig(props, "VersioningConfiguration", "Status"); got != "Enabled" {
		p.addf("BillsBucket.VersioningConfiguration.Status = %s, want Enabled", show(got))
	}
	rules := list(dig(props, "LifecycleConfiguration", "Rules"))
	rule := func(pred func(r any) bool) bool { return slices.ContainsFunc(rules, pred) }
	enabled := func(r any) bool { return dig(r, "Status") == "Enabled" }
	if !rule(func(r any) bool {
		tr := list(dig(r, "Transitions"))
		return enabled(r) && dig(r, "Prefix") == "bills/" && refIs(dig(r, "ExpirationInDays"), "BillRetentionDays") &&
			len(tr) == 1 && dig(tr[0], "StorageClass") == "STANDARD_IA" && same(dig(tr[0], "TransitionInDays"), 30)
	}) {
		p.addf("BillsBucket lifecycle: no rule for bills/ with STANDARD_IA after 30 days and expiration !Ref BillRetentionDays; rules %s", show(rules))
	}
	if !rule(func(r any) bool {
		return enabled(r) && dig(r, "Prefix") == "reports/" && refIs(dig(r, "ExpirationInDays"), "BillRetentionDays")
	}) {
		p.addf("BillsBucket lifecycle: no rule for reports/ expiring after !Ref BillRetentionDays; rules %s", show(rules))
	}
	if !rule(func(r any) bool {
		return enabled(r) && same(dig(r, "NoncurrentVersionExpiration", "NoncurrentDays"), 30)
	}) {
		p.addf("BillsBucket lifecycle: no rule expiring noncurrent versions after 30 days; rules %s", show(rules))
	}
	if !rule(func(r any) bool {
		return enabled(r) && same(dig(r, "AbortIncompleteMultipartUpload", "DaysAfterInitiation"), 7)
	}) {
		p.addf("BillsBucket lifecycle: no rule aborting incomplete multipart uploads after 7 days; rules %s", show(rules))
	}
	denied := false
	for _, id := range resourceIDs(tpl) {
		r := tpl.Resources[id]
		if r.Type != "AWS::S3::BucketPolicy" || !refIs(r.Properties["Bucket"], "BillsBucket") {
			continue
		}
		for _, st := range samtemplate.PolicyStatements(r.Properties["PolicyDocument"]) {
			if st.Effect == "Deny" && dig(st.Condition, "Bool", "aws:SecureTransport") == "false" && principalIsWildcard(st.Principal) &&
				slices.Contains(st.Actions, "s3:*") && len(st.Resources) == 2 {
				denied = true
			}
		}
	}
	if !denied {
		p.addf("no AWS::S3::BucketPolicy on BillsBucket denies s3:* to * on the bucket and its objects when aws:SecureTransport is false")
	}
	return p
}

func checkOutputs(tpl *samtemplate.Template, _ []byte) []string {
	var p problems
	outputs, _ := tpl.Raw["Outputs"].(map[string]any)
	const apiBase = "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${Stage}/"
	want := []struct {
		name string
		ok   func(v any) bool
		desc string
	}{
		{"ApiUrl", func(v any) bool { return subIs(v, apiBase) }, "!Sub " + apiBase},
		{"NotifyUrl", func(v any) bool { return subIs(v, apiBase+"notify/") }, "!Sub " + apiBase + "notify/"},
		{"TableName", func(v any) bool { return refIs(v, "Table") }, "!Ref Table"},
		{"BillsBucketName", func(v any) bool { return refIs(v, "BillsBucket") }, "!Ref BillsBucket"},
		{"EventBusName", func(v any) bool { return refIs(v, "EventBus") }, "!Ref EventBus"},
		{"BillingDLQUrl", func(v any) bool { return refIs(v, "BillingDLQ") }, "!Ref BillingDLQ"},
		{"PayscoreDLQUrl", func(v any) bool { return refIs(v, "PayscoreDLQ") }, "!Ref PayscoreDLQ"},
	}
	for _, w := range want {
		o, ok := outputs[w.name]
		if !ok {
			p.addf("Outputs.%s is missing", w.name)
			continue
		}
		if v := dig(o, "Value"); !w.ok(v) {
			p.addf("Outputs.%s.Value = %s, want %s", w.name, show(v), w.desc)
		}
	}
	// NotifyUrl + channel must be the public route.
	for _, r := range tpl.Routes {
		if r.Public && r.Path != "/notify/{channel}" {
			p.addf("public route %s does not match NotifyUrl + {channel}", r.Key())
		}
	}
	return p
}

func checkReferences(tpl *samtemplate.Template, _ []byte) []string {
	var p problems
	params, _ := tpl.Raw["Parameters"].(map[string]any)
	for _, ref := range samtemplate.References(tpl.Raw) {
		if ref.Attribute == "" {
			_, isParam := params[ref.Name]
			_, isRes := tpl.Resources[ref.Name]
			if !isParam && !isRes && !isPseudoParameter(ref.Name) {
				p.addf("%s: %s %q names no resource, parameter or pseudo parameter", ref.Path, ref.Kind, ref.Name)
			}
			continue
		}
		r, ok := tpl.Resources[ref.Name]
		if !ok {
			p.addf("%s: %s %q.%s names no resource", ref.Path, ref.Kind, ref.Name, ref.Attribute)
			continue
		}
		attrs, known := knownAttributes(r.Type)
		switch {
		case !known:
			p.addf("%s: %s on %s (%s): no attribute list for this type in the test; add it", ref.Path, ref.Kind, ref.Name, r.Type)
		case !slices.Contains(attrs, ref.Attribute):
			p.addf("%s: %s %s.%q: %s has attributes %q", ref.Path, ref.Kind, ref.Name, ref.Attribute, r.Type, attrs)
		}
	}
	for _, id := range resourceIDs(tpl) {
		for _, d := range list(tpl.Resources[id].Raw["DependsOn"]) {
			name, _ := d.(string)
			if _, ok := tpl.Resources[name]; !ok {
				p.addf("Resources.%s.DependsOn %q names no resource", id, name)
			}
		}
	}
	return p
}

// checkCycles finds circular dependencies between resources. Besides the
// explicit references and DependsOn, SAM makes an HttpApi depend on every
// function with an event on it (the function ARNs are in its OpenAPI body),
// so a function must not refer to its API.
func checkCycles(tpl *samtemplate.Template, _ []byte) []string {
	edges := map[string]map[string]bool{}
	add := func(from, to string) {
		if _, ok := tpl.Resources[to]; !ok {
			return
		}
		if edges[from] == nil {
			edges[from] = map[string]bool{}
		}
		edges[from][to] = true
	}
	for id, r := range tpl.Resources {
		var deps any = r.Raw
		if f, ok := tpl.Function(id); ok {
			props := map[string]any{}
			for k, v := range f.Properties {
				if k != "Events" {
					props[k] = v
				}
			}
			deps = []any{props, r.Metadata, r.Raw["DependsOn"]}
		}
		for _, ref := range samtemplate.References(deps) {
			add(id, ref.Name)
		}
		for _, d := range list(r.Raw["DependsOn"]) {
			name, _ := d.(string)
			add(id, name)
		}
	}
	for _, rt := range tpl.Routes {
		if rt.API != "" {
			add(rt.API, rt.Function)
		}
	}
	const (
		unvisited = iota
		active
		done
	)
	state := map[string]int{}
	var stack []string
	var p problems
	var visit func(n string)
	visit = func(n string) {
		state[n] = active
		stack = append(stack, n)
		for _, m := range sortedSet(edges[n]) {
			switch state[m] {
			case active:
				i := slices.Index(stack, m)
				p.addf("circular dependency: %s -> %s", strings.Join(stack[i:], " -> "), m)
			case unvisited:
				visit(m)
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
	}
	for _, id := range resourceIDs(tpl) {
		if state[id] == unvisited {
			visit(id)
		}
	}
	return p
}

// checkYAML11 finds plain scalars that YAML 1.1 parsers (PyYAML, used by the
// SAM CLI) read as booleans although YAML 1.2 reads them as strings.
func checkYAML11(_ *samtemplate.Template, src []byte) []string {
	var p problems
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(src)).Decode(&doc); err != nil {
		return []string{fmt.Sprintf("YAML: %v", err)}
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode && n.Style == 0 && n.ShortTag() == "!!str" {
			switch strings.ToLower(n.Value) {
			case "y", "yes", "n", "no", "on", "off":
				p.addf("line %d: plain %q is a boolean in YAML 1.1 (sam reads it so); quote it", n.Line, n.Value)
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	return p
}

// ---------------------------------------------------------------- alarms

// emission is one metrics Count call in the functions' code: its dimension
// names with the literal value, or "" where the value is computed.
type emission struct {
	dims map[string]string
	at   string // file:line
}

// emittedMetrics finds every `<x>.Count("Name", value, map[string]string{...})`
// call in the non-test Go files under shared/: the EMF metrics the functions
// write (namespace wxpay-serverless).
func emittedMetrics() (map[string][]emission, error) {
	out := map[string][]emission{}
	fset := token.NewFileSet()
	err := filepath.WalkDir("../../shared", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 3 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			name, isLit := call.Args[0].(*ast.BasicLit)
			lit, isMap := call.Args[2].(*ast.CompositeLit)
			if !ok || sel.Sel.Name != "Count" || !isLit || name.Kind != token.STRING || !isMap {
				return true
			}
			metric, err := strconv.Unquote(name.Value)
			if err != nil {
				return true
			}
			e := emission{dims: map[string]string{}, at: fset.Position(call.Pos()).String()}
			for _, el := range lit.Elts {
				kv, ok := el.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				k, ok := kv.Key.(*ast.BasicLit)
				if !ok {
					continue
				}
				key, _ := strconv.Unquote(k.Value)
				val := ""
				if v, ok := kv.Value.(*ast.BasicLit); ok && v.Kind == token.STRING {
					val, _ = strconv.Unquote(v.Value)
				}
				e.dims[key] = val
			}
			out[metric] = append(out[metric], e)
			return true
		})
		return nil
	})
	return out, err
}

// dimensionValues are the values a computed dimension takes: the constants
// the code fills it from.
func dimensionValues() map[string][]string {
	classes := []string{}
	for _, c := range reconcile.Classes() {
		classes = append(classes, string(c))
	}
	return map[string][]string{
		"Outcome": {notify.OutcomeAccepted, notify.OutcomeDuplicate, notify.OutcomeSuperseded, notify.OutcomeAnomaly, notify.OutcomeIgnored,
			notify.OutcomeBadSignature, notify.OutcomeStale, notify.OutcomeDecryptError, notify.OutcomeInvalid, notify.OutcomeStoreError},
		"Status": {billing.StatusRunning, billing.StatusPending, billing.StatusDone, billing.StatusEmpty, billing.StatusFailed, billing.StatusNotConfigured},
		"Class":  classes,
	}
}

// metricRef is one metric an alarm reads.
type metricRef struct {
	namespace, name string
	dims            map[string]any // value as written (a string or an intrinsic)
	at              string
}

func (m metricRef) String() string {
	var parts []string
	for _, k := range sortedKeysOf(m.dims) {
		parts = append(parts, fmt.Sprintf("%s=%s", k, show(m.dims[k])))
	}
	return fmt.Sprintf("%s/%s{%s}", m.namespace, m.name, strings.Join(parts, ","))
}

func dimsOf(v any) map[string]any {
	out := map[string]any{}
	for _, d := range list(v) {
		name, _ := dig(d, "Name").(string)
		out[name] = dig(d, "Value")
	}
	return out
}

var (
	insightsQuery = regexp.MustCompile(`^SELECT (SUM|MAX|MIN|AVG|COUNT)\((\w+)\) FROM SCHEMA\("([^"]+)"((?:,\s*\w+)*)\)(?:\s+WHERE\s+(.+))?$`)
	whereClause   = regexp.MustCompile(`^(\w+)\s*=\s*'([^']*)'$`)
	mathID        = regexp.MustCompile(`\b[a-z][A-Za-z0-9_]*\b`)
)

// alarmMetrics lists the metrics of one alarm: its single metric, the
// MetricStats of its metric math, or the schema of its Metrics Insights
// query (dimension values from WHERE), with the problems of its metric math.
func alarmMetrics(id string, props map[string]any, p *problems) []metricRef {
	var refs []metricRef
	if name, ok := props["MetricName"]; ok {
		if _, both := props["Metrics"]; both {
			p.addf("%s: both MetricName and Metrics", id)
		}
		ns, _ := props["Namespace"].(string)
		n, _ := name.(string)
		if props["Statistic"] == nil || props["Period"] == nil {
			p.addf("%s: a single-metric alarm needs Statistic and Period", id)
		}
		return []metricRef{{namespace: ns, name: n, dims: dimsOf(props["Dimensions"]), at: id}}
	}
	queries := list(props["Metrics"])
	if len(queries) == 0 {
		p.addf("%s: neither MetricName nor Metrics", id)
		return nil
	}
	ids := map[string]bool{}
	returned := 0
	for _, q := range queries {
		qid, _ := dig(q, "Id").(string)
		ids[qid] = true
		if same(dig(q, "ReturnData"), true) {
			returned++
		}
	}
	if returned != 1 {
		p.addf("%s: %d Metrics entries with ReturnData true, want 1", id, returned)
	}
	for _, q := range queries {
		qid, _ := dig(q, "Id").(string)
		at := id + "." + qid
		if ms := dig(q, "MetricStat"); ms != nil {
			if dig(ms, "Period") == nil || dig(ms, "Stat") == nil {
				p.addf("%s: MetricStat needs Period and Stat", at)
			}
			ns, _ := dig(ms, "Metric", "Namespace").(string)
			n, _ := dig(ms, "Metric", "MetricName").(string)
			refs = append(refs, metricRef{namespace: ns, name: n, dims: dimsOf(dig(ms, "Metric", "Dimensions")), at: at})
			continue
		}
		expr, _ := dig(q, "Expression").(string)
		expr = strings.Join(strings.Fields(expr), " ")
		if expr == "" {
			p.addf("%s: neither MetricStat nor Expression", at)
			continue
		}
		if strings.HasPrefix(expr, "SELECT ") {
			m := insightsQuery.FindStringSubmatch(expr)
			if m == nil {
				p.addf("%s: Metrics Insights query %q is not SELECT f(Metric) FROM SCHEMA(\"ns\", dims) [WHERE Dim = 'v' AND ...]", at, expr)
				continue
			}
			if dig(q, "Period") == nil {
				p.addf("%s: a Metrics Insights query in an alarm needs Period", at)
			}
			ref := metricRef{namespace: m[3], name: m[2], dims: map[string]any{}, at: at}
			for _, d := range strings.Split(m[4], ",") {
				if d = strings.TrimSpace(d); d != "" {
					ref.dims[d] = nil // any value
				}
			}
			if m[5] != "" {
				for _, c := range strings.Split(m[5], " AND ") {
					w := whereClause.FindStringSubmatch(strings.TrimSpace(c))
					if w == nil {
						p.addf("%s: WHERE clause %q is not Dim = 'value'", at, c)
						continue
					}
					if _, ok := ref.dims[w[1]]; !ok {
						p.addf("%s: WHERE %s is not a dimension of the SCHEMA", at, w[1])
					}
					ref.dims[w[1]] = w[2]
				}
			}
			refs = append(refs, ref)
			continue
		}
		for _, name := range mathID.FindAllString(expr, -1) {
			if !ids[name] || name == qid {
				p.addf("%s: expression %q refers to %q, which is no other entry's Id", at, expr, name)
			}
		}
	}
	return refs
}

// checkMetric verifies that a wxpay-serverless metric is one the code
// writes with exactly these dimensions and possible values, and that an
// AWS/SQS metric is a queue depth of one of the template's queues.
func checkMetric(tpl *samtemplate.Template, ref metricRef, emitted map[string][]emission, p *problems) {
	switch ref.namespace {
	case "wxpay-serverless":
		ems, ok := emitted[ref.name]
		if !ok {
			p.addf("%s: alarm on %s, a metric no function writes (metrics written: %q)", ref.at, ref, sortedKeysOf(toAny(emitted)))
			return
		}
		values := dimensionValues()
		var why []string
		for _, e := range ems {
			if len(e.dims) != len(ref.dims) {
				why = append(why, fmt.Sprintf("%s writes dimensions %q", e.at, sortedKeysOf(toAny(e.dims))))
				continue
			}
			match := true
			for k, want := range ref.dims {
				lit, has := e.dims[k]
				val, isStr := want.(string)
				switch {
				case !has:
					match = false
					why = append(why, fmt.Sprintf("%s writes no dimension %s", e.at, k))
				case want == nil: // any value (a Metrics Insights SCHEMA dimension)
				case !isStr:
					match = false
					why = append(why, fmt.Sprintf("dimension %s = %s is not a literal", k, show(want)))
				case lit != "" && lit != val:
					match = false
					why = append(why, fmt.Sprintf("%s writes %s=%q", e.at, k, lit))
				case lit == "" && !slices.Contains(values[k], val):
					match = false
					why = append(why, fmt.Sprintf("%s=%q is not a value the code writes (%q)", k, val, values[k]))
				}
			}
			if match {
				return
			}
		}
		p.addf("%s: alarm on %s, which no Count call writes: %s", ref.at, ref, strings.Join(why, "; "))
	case "AWS/SQS":
		q, attr, _ := samtemplate.SplitGetAtt(ref.dims["QueueName"])
		if ref.name != "ApproximateNumberOfMessagesVisible" || len(ref.dims) != 1 || attr != "QueueName" || tpl.Resources[q].Type != "AWS::SQS::Queue" {
			p.addf("%s: alarm on %s, want ApproximateNumberOfMessagesVisible with the one dimension QueueName: !GetAtt <queue>.QueueName", ref.at, ref)
		}
	default:
		p.addf("%s: alarm on %s: namespace %q is neither wxpay-serverless nor AWS/SQS", ref.at, ref, ref.namespace)
	}
}

func toAny[V any](m map[string]V) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// alarmFires reports whether a threshold alarm fires on one message (a
// value of 1).
func alarmFires(props map[string]any) bool {
	t, _ := strconv.ParseFloat(fmt.Sprint(props["Threshold"]), 64)
	switch props["ComparisonOperator"] {
	case "GreaterThanThreshold":
		return 1 > t
	case "GreaterThanOrEqualToThreshold":
		return 1 >= t
	}
	return false
}

// checkAlarms: the CloudWatch alarms notify the optional topic, read only
// metrics the code writes (or the queues' depth), and cover notify
// failures, reconciliation results and every dead-letter queue.
func checkAlarms(tpl *samtemplate.Template, _ []byte) []string {
	var p problems
	param, _ := dig(tpl.Raw, "Parameters", "AlarmTopicArn").(map[string]any)
	if param == nil || param["Type"] != "String" || !same(param["Default"], "") {
		p.addf("Parameters.AlarmTopicArn = %s, want an optional String (Default \"\")", show(param))
	}
	wantCond := map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{map[string]any{"Ref": "AlarmTopicArn"}, ""}}}}
	if got := dig(tpl.Raw, "Conditions", "HasAlarmTopic"); !same(got, wantCond) {
		p.addf("Conditions.HasAlarmTopic = %s, want !Not [!Equals [!Ref AlarmTopicArn, \"\"]]", show(got))
	}
	wantActions := map[string]any{"Fn::If": []any{"HasAlarmTopic", []any{map[string]any{"Ref": "AlarmTopicArn"}}, map[string]any{"Ref": "AWS::NoValue"}}}
	emitted, err := emittedMetrics()
	if err != nil {
		return append(p, fmt.Sprintf("reading the Count calls under shared/: %v", err))
	}
	outcomes := map[string]bool{} // Notifications outcomes some alarm watches
	recon := map[string]bool{}    // reconciliation metrics some alarm watches
	queues := map[string]bool{}   // queues with a depth alarm that fires on one message
	for _, id := range resourceIDs(tpl) {
		r := tpl.Resources[id]
		if r.Type != "AWS::CloudWatch::Alarm" {
			continue
		}
		props := r.Properties
		if d, _ := props["AlarmDescription"].(string); !strings.Contains(d, "docs/") {
			p.addf("%s: AlarmDescription should say what broke and point at the runbook (docs/...)", id)
		}
		for _, k := range []string{"AlarmActions", "OKActions"} {
			if !same(props[k], wantActions) {
				p.addf("%s: %s = %s, want !If [HasAlarmTopic, [!Ref AlarmTopicArn], !Ref AWS::NoValue]", id, k, show(props[k]))
			}
		}
		if props["TreatMissingData"] != "notBreaching" {
			p.addf("%s: TreatMissingData = %s, want notBreaching (no traffic is no failure)", id, show(props["TreatMissingData"]))
		}
		eval, _ := strconv.Atoi(fmt.Sprint(props["EvaluationPeriods"]))
		dta, _ := strconv.Atoi(fmt.Sprint(props["DatapointsToAlarm"]))
		if eval < 1 || dta < 1 || dta > eval {
			p.addf("%s: EvaluationPeriods %s, DatapointsToAlarm %s, want 1 <= DatapointsToAlarm <= EvaluationPeriods", id, show(props["EvaluationPeriods"]), show(props["DatapointsToAlarm"]))
		}
		switch props["ComparisonOperator"] {
		case "GreaterThanThreshold", "GreaterThanOrEqualToThreshold":
		default:
			p.addf("%s: ComparisonOperator %s, want GreaterThan(OrEqualTo)Threshold", id, show(props["ComparisonOperator"]))
		}
		for _, ref := range alarmMetrics(id, props, &p) {
			checkMetric(tpl, ref, emitted, &p)
			switch {
			case ref.name == "Notifications":
				if o, ok := ref.dims["Outcome"].(string); ok {
					outcomes[o] = true
				}
			case strings.HasPrefix(ref.name, "Reconciliation"):
				key := ref.name
				if s, ok := ref.dims["Status"].(string); ok {
					key += "/" + s
				}
				recon[key] = true
			case ref.namespace == "AWS/SQS" && alarmFires(props):
				q, _, _ := samtemplate.SplitGetAtt(ref.dims["QueueName"])
				queues[q] = true
			}
		}
	}
	for _, o := range []string{notify.OutcomeBadSignature, notify.OutcomeStoreError, notify.OutcomeAnomaly} {
		if !outcomes[o] {
			p.addf("no alarm watches Notifications with Outcome %s (watched: %q)", o, sortedSet(outcomes))
		}
	}
	for _, m := range []string{"ReconciliationDifferences", "ReconciliationRuns/" + billing.StatusFailed} {
		if !recon[m] {
			p.addf("no alarm watches %s (watched: %q)", m, sortedSet(recon))
		}
	}
	for _, id := range resourceIDs(tpl) {
		if tpl.Resources[id].Type == "AWS::SQS::Queue" && !queues[id] {
			p.addf("queue %s has no alarm on ApproximateNumberOfMessagesVisible that fires on one message", id)
		}
	}
	return p
}
