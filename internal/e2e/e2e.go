// Package e2e holds the end-to-end tests: the whole bundle (front door,
// five function handlers, DynamoDB Local, the WeChat Pay simulator) driven
// over HTTP the way a merchant app and WeChat Pay drive it.
package e2e
