package e2e_test

import "github.com/wxpay-serverless/wxpay-serverless/internal/stack"

func stackOptions() stack.Options { return stack.Options{} }
