{{/*
Prefix of the namespaced objects' names: empty, or namePrefix and a dash.
The cluster-scoped objects have fixed names (meshStack's integration guide
names the ServiceAccounts and their roles), so a cluster has one release.
*/}}
{{- define "meshstack-operator.prefix" -}}
{{- with .Values.namePrefix -}}
{{- . | trunc 40 | trimSuffix "-" -}}-
{{- end -}}
{{- end -}}

{{- define "meshstack-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "meshstack-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "meshstack-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: meshstack
{{- end -}}

{{- define "meshstack-operator.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/*
The ClusterRoles the role mapping and, with landing zones, the zones'
roleMappings (landingZones.bindableClusterRoles) refer to besides admin,
edit and view, sorted and unique, as a JSON list. They join the bind
resourceNames, as the guide's "Custom meshProject Roles" section says.
*/}}
{{- define "meshstack-operator.customClusterRoles" -}}
{{- $all := values .Values.roleMapping -}}
{{- if .Values.landingZones.enabled -}}
{{- $all = concat $all .Values.landingZones.bindableClusterRoles -}}
{{- end -}}
{{- $custom := list -}}
{{- range $clusterRole := $all -}}
{{- if and $clusterRole (not (has $clusterRole (list "admin" "edit" "view"))) (not (has $clusterRole $custom)) -}}
{{- $custom = append $custom $clusterRole -}}
{{- end -}}
{{- end -}}
{{- toJson (sortAlpha $custom) -}}
{{- end -}}

{{/* The role mapping as the --role-mapping flag reads it: role=clusterrole,... */}}
{{- define "meshstack-operator.roleMappingFlag" -}}
{{- $pairs := list -}}
{{- range $role, $clusterRole := .Values.roleMapping -}}
{{- if $clusterRole -}}
{{- $pairs = append $pairs (printf "%s=%s" $role $clusterRole) -}}
{{- end -}}
{{- end -}}
{{- if not $pairs -}}
{{- fail "roleMapping must map at least one meshProject role to a ClusterRole" -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{- define "meshstack-operator.meteringClaimName" -}}
{{- .Values.metering.output.persistence.existingClaim | default (printf "%smetering" (include "meshstack-operator.prefix" .)) -}}
{{- end -}}

{{/*
A component's Deployment. Called with a dict:
  root            the chart's context
  component       replicator or metering
  values          the component's values
  serviceAccount  the ServiceAccount it runs as
  args            its component-specific flags
  volumes, volumeMounts  optional lists
  strategy        optional Deployment strategy
*/}}
{{- define "meshstack-operator.deployment" -}}
{{- $root := .root -}}
{{- $v := .values -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "meshstack-operator.prefix" $root }}{{ .component }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "meshstack-operator.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  replicas: {{ $v.replicas }}
  {{- with .strategy }}
  strategy:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "meshstack-operator.selectorLabels" $root | nindent 6 }}
      app.kubernetes.io/component: {{ .component }}
  template:
    metadata:
      labels:
        {{- include "meshstack-operator.labels" $root | nindent 8 }}
        app.kubernetes.io/component: {{ .component }}
        {{- with $root.Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $v.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ .serviceAccount }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      containers:
      - name: {{ .component }}
        image: {{ include "meshstack-operator.image" $root | quote }}
        imagePullPolicy: {{ $root.Values.image.pullPolicy }}
        args:
        - --components={{ .component }}
        {{- range .args }}
        - {{ . | quote }}
        {{- end }}
        - --leader-elect
        - --leader-election-namespace={{ $root.Release.Namespace }}
        - --leader-election-lease-duration={{ $root.Values.leaderElection.leaseDuration }}
        - --leader-election-renew-deadline={{ $root.Values.leaderElection.renewDeadline }}
        - --leader-election-retry-period={{ $root.Values.leaderElection.retryPeriod }}
        - --metrics-bind-address=:{{ include "meshstack-operator.metricsPort" $root }}
        - --metrics-secure={{ $root.Values.metrics.secure }}
        {{- if and $root.Values.metrics.secure $root.Values.metrics.certSecretName }}
        - --metrics-cert-dir=/var/run/metrics-certs
        {{- end }}
        - --health-probe-bind-address=:8081
        - --zap-log-level={{ $root.Values.logLevel }}
        {{- range $v.extraArgs }}
        - {{ . | quote }}
        {{- end }}
        ports:
        - name: metrics
          containerPort: {{ include "meshstack-operator.metricsPort" $root }}
          protocol: TCP
        - name: health
          containerPort: 8081
          protocol: TCP
        livenessProbe:
          httpGet:
            path: /healthz
            port: health
          initialDelaySeconds: 15
          periodSeconds: 20
        readinessProbe:
          httpGet:
            path: /readyz
            port: health
          initialDelaySeconds: 5
          periodSeconds: 10
        securityContext:
          {{- toYaml $root.Values.securityContext | nindent 10 }}
        {{- with $v.resources }}
        resources:
          {{- toYaml . | nindent 10 }}
        {{- end }}
        {{- $mounts := .volumeMounts | default list }}
        {{- $volumes := .volumes | default list }}
        {{- if and $root.Values.metrics.secure $root.Values.metrics.certSecretName }}
        {{- $mounts = append $mounts (dict "name" "metrics-certs" "mountPath" "/var/run/metrics-certs" "readOnly" true) }}
        {{- $volumes = append $volumes (dict "name" "metrics-certs" "secret" (dict "secretName" $root.Values.metrics.certSecretName)) }}
        {{- end }}
        {{- with $mounts }}
        volumeMounts:
          {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $volumes }}
      volumes:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with ($v.nodeSelector | default $root.Values.nodeSelector) }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with ($v.tolerations | default $root.Values.tolerations) }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with ($v.affinity | default $root.Values.affinity) }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}

{{/* A component's metrics Service. Called with a dict: root, component. */}}
{{- define "meshstack-operator.metricsService" -}}
{{- $root := .root -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "meshstack-operator.prefix" $root }}{{ .component }}-metrics
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "meshstack-operator.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
  {{- with $root.Values.metrics.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: ClusterIP
  selector:
    {{- include "meshstack-operator.selectorLabels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
  ports:
  - name: metrics
    port: {{ $root.Values.metrics.service.port }}
    targetPort: metrics
    protocol: TCP
{{- end -}}


{{/* The container port of /metrics: 8443 served securely, 8080 in plain HTTP. */}}
{{- define "meshstack-operator.metricsPort" -}}
{{- if .Values.metrics.secure }}8443{{ else }}8080{{ end }}
{{- end -}}

{{/* The roles roleMapping maps, as a CEL list literal: ['admin', 'edit']. */}}
{{- define "meshstack-operator.mappedRolesCEL" -}}
{{- $roles := list -}}
{{- range $role, $clusterRole := .Values.roleMapping -}}
{{- if $clusterRole -}}
{{- $roles = append $roles (printf "'%s'" $role) -}}
{{- end -}}
{{- end -}}
[{{ join ", " $roles }}]
{{- end -}}

{{/*
The metering checkpoint's ConfigMap names, as JSON (read it with fromJson):
"written" are the first ConfigMap metering.checkpoint.name and the data parts
of both generations, <name>-a-1 … <name>-a-<parts> and <name>-b-1 …
<name>-b-<parts> (a save writes the generation the first ConfigMap does not
name, then switches the first ConfigMap to it); "legacy" are <name>-1 …
<name>-<parts-1>, where the release before generations kept the parts, which
the meter only reads (a checkpoint written before an upgrade).
*/}}
{{- define "meshstack-operator.checkpointNames" -}}
{{- $name := .Values.metering.checkpoint.name -}}
{{- $parts := int .Values.metering.checkpoint.parts -}}
{{- $written := list $name -}}
{{- range $g := list "a" "b" -}}
{{- range $i := untilStep 1 (int (add $parts 1)) 1 -}}
{{- $written = append $written (printf "%s-%s-%d" $name $g $i) -}}
{{- end -}}
{{- end -}}
{{- $legacy := list -}}
{{- range $i := untilStep 1 $parts 1 -}}
{{- $legacy = append $legacy (printf "%s-%d" $name $i) -}}
{{- end -}}
{{- dict "written" $written "legacy" $legacy | toJson -}}
{{- end -}}

{{/* A list of strings as a CEL list literal. */}}
{{- define "meshstack-operator.celStrings" -}}
{{- $items := list -}}
{{- range . -}}
{{- $items = append $items (printf "'%s'" .) -}}
{{- end -}}
[{{ join ", " $items }}]
{{- end -}}

{{/*
Whole seconds of a Go duration such as 1m or 1h30m (metering.interval,
metering.window), for PromQL, which compares seconds. Sprig parses Go
durations only in dateModify, so: the duration added to a date, minus the date.
*/}}
{{- define "meshstack-operator.seconds" -}}
{{- $date := toDate "2006-01-02" "2000-01-01" -}}
{{- sub (mustDateModify . $date | unixEpoch) ($date | unixEpoch) -}}
{{- end -}}

{{/*
An alert's labels and annotations. Called with a dict:
  root         the chart's context
  alert        the alert's name
  values       its values (severity)
  summary, description  its annotations (Prometheus templates)
The alert's severity wins over prometheusRule.additionalRuleLabels.
*/}}
{{- define "meshstack-operator.alertMetadata" -}}
{{- $p := .root.Values.prometheusRule -}}
{{- $labels := merge (dict "severity" .values.severity) $p.additionalRuleLabels -}}
{{- $annotations := dict "summary" .summary "description" .description -}}
{{- with $p.runbookUrl }}
{{- if contains "{alert}" . }}
{{- $_ := set $annotations "runbook_url" (replace "{alert}" (lower $.alert) .) }}
{{- else }}
{{- $_ := set $annotations "runbook_url" (printf "%s#%s" . (lower $.alert)) }}
{{- end }}
{{- end }}
{{- $annotations = merge $annotations $p.additionalRuleAnnotations -}}
labels:
{{- range $k, $v := $labels }}
  {{ $k }}: {{ $v | toJson }}
{{- end }}
annotations:
{{- range $k, $v := $annotations }}
  {{ $k }}: {{ $v | toJson }}
{{- end }}
{{- end -}}

{{- /*
CEL: whether the object named by the argument (object, oldObject,
namespaceObject) carries one of the operator's marks, the managed-by label
or the ownership annotation.
*/}}
{{- define "meshstack-operator.markedCEL" -}}
(has({{ . }}.metadata.labels) && {{ . }}.metadata.labels[?'app.kubernetes.io/managed-by'].orValue('') == 'meshstack-operator') || (has({{ . }}.metadata.annotations) && 'meshcloud.io/meshproject' in {{ . }}.metadata.annotations)
{{- end -}}
