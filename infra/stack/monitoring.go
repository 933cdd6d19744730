package stack

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	cw "github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	cwactions "github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Log-based metrics. Every request logs one JSON line (log/slog) with the
// message "request", "op", "outcome", "status" and "duration_ms"; metric
// filters turn outcomes into metrics in the namespace "Stampede/<env>".
// In Lambda the functions log through aws-lambda-go's lambdacontext
// handler, which names the message "message" (and writes JSON because the
// functions' log format is JSON); plain log/slog names it "msg". The
// filters accept both.
const (
	MetricCacheHits             = "CacheHits"
	MetricCacheMisses           = "CacheMisses"
	MetricReservationsAcquired  = "ReservationsAcquired"
	MetricReservationsContended = "ReservationsContended"
	// MetricServerErrors counts requests answered with an internal or
	// unavailable error (outcome "error"), with dimension Operation. On
	// the HTTP path these are 5xx responses, which Lambda counts as
	// successful invocations: the Errors metric alone would miss them.
	MetricServerErrors = "ServerErrors"
)

// logMetric is one metric filter: requests of op with outcome.
type logMetric struct {
	op, outcome, name string
}

func logMetrics() []logMetric {
	return []logMetric{
		{"get", "hit", MetricCacheHits},
		{"get", "miss", MetricCacheMisses},
		{"reserve", "acquired", MetricReservationsAcquired},
		{"reserve", "contended", MetricReservationsContended},
	}
}

// Namespace is the CloudWatch namespace of the log-based metrics.
func (c Config) Namespace() string { return "Stampede/" + c.Env }

func requestPattern(outcome string) awslogs.IFilterPattern {
	return awslogs.FilterPattern_All(
		awslogs.FilterPattern_Any(
			awslogs.FilterPattern_StringValue(jsii.String("$.message"), jsii.String("="), jsii.String("request")),
			awslogs.FilterPattern_StringValue(jsii.String("$.msg"), jsii.String("="), jsii.String("request")),
		),
		awslogs.FilterPattern_StringValue(jsii.String("$.outcome"), jsii.String("="), jsii.String(outcome)),
	)
}

func (s *Stampede) newMonitoring(scope constructs.Construct, cfg Config) {
	ns := jsii.String(cfg.Namespace())
	period := awscdk.Duration_Minutes(jsii.Number(5))
	sum := func(name string, dims map[string]*string, label string) cw.Metric {
		props := &cw.MetricProps{Namespace: ns, MetricName: jsii.String(name), Statistic: jsii.String("Sum"), Period: period, Label: jsii.String(label)}
		if dims != nil {
			props.DimensionsMap = &dims
		}
		return cw.NewMetric(props)
	}

	for _, m := range logMetrics() {
		awslogs.NewMetricFilter(scope, jsii.String(m.name+"Filter"), &awslogs.MetricFilterProps{
			LogGroup:        s.LogGroups[m.op],
			FilterPattern:   requestPattern(m.outcome),
			MetricNamespace: ns,
			MetricName:      jsii.String(m.name),
			MetricValue:     jsii.String("1"),
			Unit:            cw.Unit_COUNT,
			FilterName:      jsii.String(fmt.Sprintf("stampede-%s-%s", cfg.Env, m.name)),
		})
	}

	var alarms []cw.IAlarm
	var topic awssns.ITopic
	if cfg.AlarmTopicArn != "" {
		topic = awssns.Topic_FromTopicArn(scope, jsii.String("AlarmTopic"), jsii.String(cfg.AlarmTopicArn))
	}
	alarm := func(id, name, description string, metric cw.IMetric, threshold, evaluations, datapoints float64, op cw.ComparisonOperator) {
		a := cw.NewAlarm(scope, jsii.String(id), &cw.AlarmProps{
			AlarmName:          jsii.String(name),
			AlarmDescription:   jsii.String(description),
			Metric:             metric,
			Threshold:          jsii.Number(threshold),
			EvaluationPeriods:  jsii.Number(evaluations),
			DatapointsToAlarm:  jsii.Number(datapoints),
			ComparisonOperator: op,
			TreatMissingData:   cw.TreatMissingData_NOT_BREACHING,
		})
		if topic != nil {
			a.AddAlarmAction(cwactions.NewSnsAction(topic))
			a.AddOkAction(cwactions.NewSnsAction(topic))
		}
		alarms = append(alarms, a)
	}

	var errorsByFn, throttlesByFn, p99ByFn, p50ByFn, invocationsByFn []cw.IMetric
	for _, f := range Functions() {
		fn := s.Functions[f.Name]
		id := f.Title()
		awslogs.NewMetricFilter(scope, jsii.String(id+"ServerErrorsFilter"), &awslogs.MetricFilterProps{
			LogGroup:        s.LogGroups[f.Name],
			FilterPattern:   requestPattern("error"),
			MetricNamespace: ns,
			MetricName:      jsii.String(MetricServerErrors),
			MetricValue:     jsii.String("1"),
			Dimensions:      &map[string]*string{"Operation": jsii.String("$.op")},
			Unit:            cw.Unit_COUNT,
			FilterName:      jsii.String(fmt.Sprintf("stampede-%s-%s-%s", cfg.Env, f.Name, MetricServerErrors)),
		})

		// Errors: invocations that failed (crash, timeout, or an error
		// returned to a direct caller such as Step Functions) plus
		// requests answered with a 5xx.
		errs := cw.NewMathExpression(&cw.MathExpressionProps{
			// Metric ids are unique per function: the graph of all
			// functions' errors holds every expression's metrics.
			Expression: jsii.String(fmt.Sprintf("FILL(invocation_errors_%[1]s, 0) + FILL(server_errors_%[1]s, 0)", f.Name)),
			UsingMetrics: &map[string]cw.IMetric{
				"invocation_errors_" + f.Name: fn.MetricErrors(&cw.MetricOptions{Statistic: jsii.String("Sum"), Period: period}),
				"server_errors_" + f.Name:     sum(MetricServerErrors, map[string]*string{"Operation": jsii.String(f.Name)}, f.Name+" server errors"),
			},
			Label:  jsii.String(f.Name),
			Period: period,
		})
		throttles := fn.MetricThrottles(&cw.MetricOptions{Statistic: jsii.String("Sum"), Period: period, Label: jsii.String(f.Name)})
		p99 := fn.MetricDuration(&cw.MetricOptions{Statistic: jsii.String("p99"), Period: period, Label: jsii.String(f.Name + " p99")})
		p50 := fn.MetricDuration(&cw.MetricOptions{Statistic: jsii.String("p50"), Period: period, Label: jsii.String(f.Name + " p50")})
		errorsByFn = append(errorsByFn, errs)
		throttlesByFn = append(throttlesByFn, throttles)
		p99ByFn = append(p99ByFn, p99)
		p50ByFn = append(p50ByFn, p50)
		invocationsByFn = append(invocationsByFn, fn.MetricInvocations(&cw.MetricOptions{Statistic: jsii.String("Sum"), Period: period, Label: jsii.String(f.Name)}))

		prefix := fmt.Sprintf("stampede-%s-%s", cfg.Env, f.Name)
		alarm(id+"ErrorsAlarm", prefix+"-errors",
			fmt.Sprintf("The %s function failed invocations or answered with 5xx errors in the last 5 minutes.", f.Name),
			errs, 1, 1, 1, cw.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD)
		alarm(id+"ThrottlesAlarm", prefix+"-throttles",
			fmt.Sprintf("Lambda throttled the %s function in the last 5 minutes (account or reserved concurrency exhausted).", f.Name),
			throttles, 1, 1, 1, cw.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD)
		alarm(id+"DurationAlarm", prefix+"-p99-duration",
			fmt.Sprintf("The %s function's p99 duration exceeded %d ms in 2 of the last 3 five-minute periods.", f.Name, cfg.P99DurationAlarmMs),
			p99, float64(cfg.P99DurationAlarmMs), 3, 2, cw.ComparisonOperator_GREATER_THAN_THRESHOLD)
	}

	hits := sum(MetricCacheHits, nil, "hits")
	misses := sum(MetricCacheMisses, nil, "misses")
	acquired := sum(MetricReservationsAcquired, nil, "acquired")
	contended := sum(MetricReservationsContended, nil, "contended")
	hitRatio := cw.NewMathExpression(&cw.MathExpressionProps{
		Expression:   jsii.String("100 * FILL(hits, 0) / (FILL(hits, 0) + FILL(misses, 0))"),
		UsingMetrics: &map[string]cw.IMetric{"hits": hits, "misses": misses},
		Label:        jsii.String("hit ratio (%)"),
		Period:       period,
	})
	graph := func(title string, width float64, left ...cw.IMetric) cw.IWidget {
		return cw.NewGraphWidget(&cw.GraphWidgetProps{Title: jsii.String(title), Width: jsii.Number(width), Height: jsii.Number(6), Left: &left})
	}
	dash := cw.NewDashboard(scope, jsii.String("Dashboard"), &cw.DashboardProps{
		DashboardName:   jsii.String("Stampede-" + cfg.Env),
		DefaultInterval: awscdk.Duration_Hours(jsii.Number(3)),
	})
	dash.AddWidgets(
		graph("Cache hits and misses", 9, hits, misses),
		cw.NewSingleValueWidget(&cw.SingleValueWidgetProps{Title: jsii.String("Hit ratio"), Width: jsii.Number(6), Height: jsii.Number(6), Metrics: &[]cw.IMetric{hitRatio}}),
		graph("Reservations: acquired and contended", 9, acquired, contended),
	)
	dash.AddWidgets(
		graph("Latency p50 (ms)", 12, p50ByFn...),
		graph("Latency p99 (ms)", 12, p99ByFn...),
	)
	dash.AddWidgets(
		graph("Errors (failed invocations + 5xx)", 8, errorsByFn...),
		graph("Throttles", 8, throttlesByFn...),
		graph("Invocations", 8, invocationsByFn...),
	)
	dash.AddWidgets(cw.NewAlarmStatusWidget(&cw.AlarmStatusWidgetProps{
		Title: jsii.String("Alarms"), Alarms: &alarms, Width: jsii.Number(24),
	}))
}
