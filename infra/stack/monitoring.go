package stack

import (
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	cw "github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	cwactions "github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// The metrics the functions emit in CloudWatch's Embedded Metric Format
// (one JSON log line per request that CloudWatch turns into metrics; no
// metric filter, no PutMetricData permission): namespace MetricsNamespace,
// dimension set [Operation], the operation being get, put, delete,
// reserve, release or inspect. Counts unless noted. An operation's metrics
// count its calls over both APIs: the flyte function's get and the get
// function's share the dimension value "get".
const (
	MetricsNamespace = "Stampede"
	DimOperation     = "Operation"

	MetricHits                  = "Hits"
	MetricMisses                = "Misses"
	MetricPutsCreated           = "PutsCreated"
	MetricPutsOverwritten       = "PutsOverwritten"
	MetricPutsRefused           = "PutsRefused"
	MetricFencedPutsRefused     = "FencedPutsRefused"
	MetricReservationsAcquired  = "ReservationsAcquired"
	MetricReservationsContended = "ReservationsContended"
	MetricReservationsTakenOver = "ReservationsTakenOver"
	// MetricThrottles counts requests answered 429 (DynamoDB throttled).
	MetricThrottles = "Throttles"
	// MetricUnavailable counts requests answered 503.
	MetricUnavailable = "Unavailable"
	// MetricErrors counts requests answered with a 5xx. On the API path
	// Lambda counts them as successful invocations: its Errors metric
	// alone would miss them.
	MetricErrors = "Errors"
	// MetricLatency is each request's duration in milliseconds.
	MetricLatency = "Latency"
)

// Operations lists the operations, as the Operation dimension names them,
// each once (the flyte function runs the others' operations).
func Operations() []string {
	var ops []string
	for _, f := range Functions() {
		for _, op := range f.Operations {
			if !slices.Contains(ops, op) {
				ops = append(ops, op)
			}
		}
	}
	return ops
}

func metricPeriod() awscdk.Duration { return awscdk.Duration_Minutes(jsii.Number(5)) }

// opMetric is one of the functions' metrics for one operation.
func opMetric(name, op, statistic, label string) cw.Metric {
	return cw.NewMetric(&cw.MetricProps{
		Namespace:     jsii.String(MetricsNamespace),
		MetricName:    jsii.String(name),
		DimensionsMap: &map[string]*string{DimOperation: jsii.String(op)},
		Statistic:     jsii.String(statistic),
		Period:        metricPeriod(),
		Label:         jsii.String(label),
	})
}

// fillSum is the expression adding up metrics, each missing datapoint
// counted as 0. Metric ids are unique across the stack's expressions: a
// graph of several expressions holds all their metrics.
func fillSum(label string, metrics map[string]cw.IMetric) cw.MathExpression {
	var terms []string
	for id := range metrics {
		terms = append(terms, "FILL("+id+", 0)")
	}
	slices.Sort(terms)
	return cw.NewMathExpression(&cw.MathExpressionProps{
		Expression:   jsii.String(strings.Join(terms, " + ")),
		UsingMetrics: &metrics,
		Label:        jsii.String(label),
		Period:       metricPeriod(),
	})
}

func (s *Stampede) newMonitoring(scope constructs.Construct, cfg Config) {
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
	sum := &cw.MetricOptions{Statistic: jsii.String("Sum"), Period: metricPeriod()}
	atLeastOnce := cw.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD

	var errorsByFn, throttlesByFn, durationP99, invocations []cw.IMetric
	for _, f := range Functions() {
		fn := s.Functions[f.Name]
		id, prefix := f.Title(), fmt.Sprintf("stampede-%s-%s", cfg.Env, f.Name)

		// Failed invocations (crash, timeout, or an error returned to a
		// direct caller such as Step Functions) plus requests answered
		// with a 5xx. The service's metrics are by operation, not by
		// function: a 5xx of Flyte's Get counts in both the get and the
		// flyte function's alarm, which say so.
		errMetrics := map[string]cw.IMetric{"invocation_errors_" + f.Name: fn.MetricErrors(sum)}
		// Lambda refusing to run the function, plus DynamoDB throttling
		// requests (429).
		throttleMetrics := map[string]cw.IMetric{"invocation_throttles_" + f.Name: fn.MetricThrottles(sum)}
		for _, op := range f.Operations {
			errMetrics["errors_"+op] = opMetric(MetricErrors, op, "Sum", op+" 5xx")
			throttleMetrics["throttles_"+op] = opMetric(MetricThrottles, op, "Sum", op+" 429")
		}
		errs := fillSum(f.Name, errMetrics)
		throttles := fillSum(f.Name, throttleMetrics)
		p99 := fn.MetricDuration(&cw.MetricOptions{Statistic: jsii.String("p99"), Period: metricPeriod(), Label: jsii.String(f.Name)})
		errorsByFn = append(errorsByFn, errs)
		throttlesByFn = append(throttlesByFn, throttles)
		durationP99 = append(durationP99, p99)
		invocations = append(invocations, fn.MetricInvocations(&cw.MetricOptions{Statistic: jsii.String("Sum"), Period: metricPeriod(), Label: jsii.String(f.Name)}))

		ops := strings.Join(f.Operations, ", ")
		alarm(id+"ErrorsAlarm", prefix+"-errors",
			fmt.Sprintf("In the last 5 minutes, the %s function failed invocations, or its operations (%s) answered with 5xx errors over either API (the HTTP API's functions and the flyte function share the operations' metrics).", f.Name, ops),
			errs, 1, 1, 1, atLeastOnce)
		alarm(id+"ThrottlesAlarm", prefix+"-throttles",
			fmt.Sprintf("In the last 5 minutes, Lambda throttled the %s function (reserved or account concurrency exhausted), or DynamoDB throttled its operations (%s) over either API (429 answers).", f.Name, ops),
			throttles, 1, 1, 1, atLeastOnce)
		alarm(id+"DurationAlarm", prefix+"-p99-duration",
			fmt.Sprintf("The %s function's p99 duration exceeded %d ms in 2 of the last 3 five-minute periods.", f.Name, cfg.P99DurationAlarmMs),
			p99, float64(cfg.P99DurationAlarmMs), 3, 2, cw.ComparisonOperator_GREATER_THAN_THRESHOLD)
	}
	apiPrefix := "stampede-" + cfg.Env + "-api"
	alarm("ApiServerErrorsAlarm", apiPrefix+"-5xx",
		"The API answered with 5xx errors in the last 5 minutes (the functions' own, or API Gateway failing to invoke them).",
		s.apiMetrics.serverErrors, 1, 1, 1, atLeastOnce)
	alarm("ApiLatencyAlarm", apiPrefix+"-p99-latency",
		fmt.Sprintf("The API's p99 latency exceeded %d ms in 2 of the last 3 five-minute periods.", cfg.P99DurationAlarmMs),
		s.apiMetrics.latencyP99, float64(cfg.P99DurationAlarmMs), 3, 2, cw.ComparisonOperator_GREATER_THAN_THRESHOLD)

	s.newDashboard(scope, cfg, alarms, errorsByFn, throttlesByFn, durationP99, invocations)
}

func (s *Stampede) newDashboard(scope constructs.Construct, cfg Config, alarms []cw.IAlarm, errorsByFn, throttlesByFn, durationP99, invocations []cw.IMetric) {
	counts := func(op string, names ...string) []cw.IMetric {
		var out []cw.IMetric
		for _, n := range names {
			out = append(out, opMetric(n, op, "Sum", n))
		}
		return out
	}
	byOp := func(name, statistic string) []cw.IMetric {
		var out []cw.IMetric
		for _, op := range Operations() {
			out = append(out, opMetric(name, op, statistic, op))
		}
		return out
	}
	graph := func(title string, width float64, left ...cw.IMetric) cw.IWidget {
		return cw.NewGraphWidget(&cw.GraphWidgetProps{Title: jsii.String(title), Width: jsii.Number(width), Height: jsii.Number(6), Left: &left})
	}
	hitRatio := cw.NewMathExpression(&cw.MathExpressionProps{
		Expression: jsii.String("100 * FILL(hits, 0) / (FILL(hits, 0) + FILL(misses, 0))"),
		UsingMetrics: &map[string]cw.IMetric{
			"hits":   opMetric(MetricHits, "get", "Sum", "hits"),
			"misses": opMetric(MetricMisses, "get", "Sum", "misses"),
		},
		Label:  jsii.String("hit ratio (%)"),
		Period: metricPeriod(),
	})
	dash := cw.NewDashboard(scope, jsii.String("Dashboard"), &cw.DashboardProps{
		DashboardName:   jsii.String("Stampede-" + cfg.Env),
		DefaultInterval: awscdk.Duration_Hours(jsii.Number(3)),
	})
	dash.AddWidgets(
		graph("Cache hits and misses", 6, counts("get", MetricHits, MetricMisses)...),
		cw.NewSingleValueWidget(&cw.SingleValueWidgetProps{Title: jsii.String("Hit ratio"), Width: jsii.Number(4), Height: jsii.Number(6), Metrics: &[]cw.IMetric{hitRatio}}),
		graph("Puts", 7, counts("put", MetricPutsCreated, MetricPutsOverwritten, MetricPutsRefused, MetricFencedPutsRefused)...),
		graph("Reservations", 7, counts("reserve", MetricReservationsAcquired, MetricReservationsContended, MetricReservationsTakenOver)...),
	)
	dash.AddWidgets(
		graph("Latency p99 by operation (ms)", 12, byOp(MetricLatency, "p99")...),
		graph("Latency p50 by operation (ms)", 12, byOp(MetricLatency, "p50")...),
	)
	dash.AddWidgets(
		graph("Errors (5xx and failed invocations) by function", 8, errorsByFn...),
		graph("Throttles (Lambda and DynamoDB) by function", 8, throttlesByFn...),
		graph("Unavailable (503) by operation", 8, byOp(MetricUnavailable, "Sum")...),
	)
	m := s.apiMetrics
	dash.AddWidgets(
		graph("API requests, 4xx and 5xx", 8, m.count, m.clientErrors, m.serverErrors),
		graph("API latency p99 (ms)", 8, m.latencyP99),
		graph("Function duration p99 (ms)", 8, durationP99...),
	)
	dash.AddWidgets(
		graph("Invocations by function", 8, invocations...),
		cw.NewAlarmStatusWidget(&cw.AlarmStatusWidgetProps{Title: jsii.String("Alarms"), Alarms: &alarms, Width: jsii.Number(16), Height: jsii.Number(6)}),
	)
}
