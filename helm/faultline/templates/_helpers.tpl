{{/* Chart name (nameOverride wins). */}}
{{- define "faultline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: release-name, unless the release is already named after the chart. */}}
{{- define "faultline.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "faultline.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Common labels (Kubernetes recommended labels). */}}
{{- define "faultline.labels" -}}
helm.sh/chart: {{ include "faultline.chart" . }}
{{ include "faultline.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: faultline
{{- end }}

{{/* Selector labels: minimal, never the chart version. */}}
{{- define "faultline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "faultline.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels of helm test and other helper pods: the release's, but never the selector labels, so no
Service, PDB, NetworkPolicy podSelector or topology spread of the workload ever selects them.
*/}}
{{- define "faultline.helperLabels" -}}
helm.sh/chart: {{ include "faultline.chart" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: faultline
{{- end }}

{{/* Prometheus `job` of every track (ServiceMonitor jobLabel): one job, told apart by `track`. */}}
{{- define "faultline.job" -}}
{{ include "faultline.fullname" . }}
{{- end }}

{{/* Replicas when a drain starts: the HPA's floor with autoscaling, else replicaCount. */}}
{{- define "faultline.minReplicas" -}}
{{- if .Values.autoscaling.enabled }}{{ .Values.autoscaling.minReplicas }}{{ else }}{{ .Values.replicaCount }}{{ end }}
{{- end }}

{{- define "faultline.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "faultline.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Grace period: preStop + drain + margin, unless set; refuse one that cannot drain. */}}
{{- define "faultline.gracePeriod" -}}
{{- $needed := add .Values.lifecycle.preStopSeconds .Values.service.drainSeconds }}
{{- $grace := .Values.lifecycle.terminationGracePeriodSeconds | default (add $needed 10) }}
{{- if le (int $grace) (int $needed) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStopSeconds + drainSeconds (%d)" (int $grace) (int $needed)) }}
{{- end }}
{{- $grace }}
{{- end }}

{{/* Image reference for a track (tag defaults to the chart's appVersion; a digest wins). */}}
{{- define "faultline.image" -}}
{{- $image := .image }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default .root.Chart.AppVersion $image.tag) }}
{{- end }}
{{- end }}

{{/*
The canary's image values: what canary.image names, the rest from image. The stable digest is
inherited only when the canary names neither a tag nor a digest (then it runs the stable image
on purpose); a canary tag must never be overridden by the stable digest.
*/}}
{{- define "faultline.canaryImage" -}}
{{- $canary := .Values.canary.image }}
{{- $image := merge (dict) $canary .Values.image }}
{{- if and $canary.tag (not $canary.digest) }}
{{- $_ := set $image "digest" "" }}
{{- end }}
{{- toJson $image }}
{{- end }}

{{/*
Where a pod finds the bundle at /models, shared by the service's pods and the explainer's (one
bundle source for both): nothing for bundle.source=image (baked into both images by the same
build), else an init container and/or a volume. Each renders a YAML list, or nothing.
*/}}
{{- define "faultline.bundleInitContainers" -}}
{{- $values := .Values }}
{{- if eq $values.bundle.source "initContainer" }}
initContainers:
  - name: fetch-bundle
    image: {{ $values.bundle.initContainer.image }}
    imagePullPolicy: {{ $values.image.pullPolicy }}
    command: {{ toJson $values.bundle.initContainer.command }}
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      runAsNonRoot: true
      capabilities:
        drop: [ALL]
    resources:
      {{- toYaml $values.resources | nindent 6 }}
    volumeMounts:
      - name: bundle
        mountPath: /models
{{- end }}
{{- end }}

{{- define "faultline.bundleMounts" -}}
{{- if ne .Values.bundle.source "image" }}
- name: bundle
  mountPath: /models
  readOnly: true
{{- end }}
{{- end }}

{{- define "faultline.bundleVolumes" -}}
{{- $values := .Values }}
{{- if eq $values.bundle.source "volume" }}
- name: bundle
  persistentVolumeClaim:
    claimName: {{ required "bundle.volume.claimName is required when bundle.source=volume" $values.bundle.volume.claimName }}
    readOnly: true
{{- else if eq $values.bundle.source "initContainer" }}
- name: bundle
  emptyDir:
    sizeLimit: 256Mi
{{- end }}
{{- end }}

{{/*
Pod template shared by the stable and canary Deployments and the Argo Rollout.
Call with (dict "root" $ "track" "stable"|"canary" "image" <image values> "modelVersion" <string>
"bundleSha256" <string>).
*/}}
{{- define "faultline.podTemplate" -}}
{{- $root := .root }}
{{- $values := $root.Values }}
metadata:
  labels:
    {{- include "faultline.selectorLabels" $root | nindent 4 }}
    {{- if .track }}
    track: {{ .track }}
    {{- end }}
    model-bundle: {{ .modelVersion | quote }}
    {{- with $values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    kubectl.kubernetes.io/default-container: faultline
    {{- with $values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "faultline.serviceAccountName" $root }}
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: {{ include "faultline.gracePeriod" $root }}
  securityContext:
    runAsNonRoot: true
    runAsUser: 10001
    runAsGroup: 10001
    fsGroup: 10001
    seccompProfile:
      type: RuntimeDefault
  {{- with $values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with include "faultline.bundleInitContainers" $root }}{{ . | nindent 2 }}{{ end }}
  containers:
    - name: faultline
      image: {{ include "faultline.image" (dict "root" $root "image" .image) }}
      imagePullPolicy: {{ .image.pullPolicy | default $values.image.pullPolicy }}
      args: ["python3", "-m", "service", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "{{ $values.service.workers }}"]
      ports:
        - name: http
          containerPort: 8000
          protocol: TCP
        - name: metrics
          containerPort: {{ $values.service.metricsPort }}
          protocol: TCP
      env:
        - name: FAULTLINE_MODEL_DIR
          value: /models
        - name: FAULTLINE_METRICS_PORT
          value: {{ $values.service.metricsPort | quote }}
        - name: FAULTLINE_DRAIN_SECONDS
          value: {{ $values.service.drainSeconds | quote }}
        - name: FAULTLINE_LOG_FORMAT
          value: json
        - name: FAULTLINE_LOG_LEVEL
          value: {{ $values.service.logLevel | quote }}
        - name: FAULTLINE_MAX_BATCH
          value: {{ $values.service.maxBatch | quote }}
        - name: FAULTLINE_PREDICTION_LOG_SAMPLE_RATE
          value: {{ $values.service.predictionLogSampleRate | quote }}
        - name: FAULTLINE_DRIFT_WINDOW
          value: {{ $values.service.driftWindow | quote }}
        - name: FAULTLINE_MAX_BODY_BYTES
          value: {{ $values.service.maxBodyBytes | quote }}
        - name: FAULTLINE_MODEL_DETAILS
          value: {{ $values.service.modelDetails | quote }}
        - name: FAULTLINE_OPENAPI
          value: {{ $values.service.openapi | quote }}
        {{- if $values.explainer.enabled }}
        - name: FAULTLINE_EXPLAINER_URL  # /v1/explain forwards here; unset: 503
          value: {{ include "faultline.explainerURL" $root | quote }}
        {{- end }}
        {{- if $values.auth.existingSecret }}
        - name: FAULTLINE_API_KEYS_FILE
          value: /etc/faultline/auth/{{ $values.auth.secretKey }}
        {{- end }}
        {{- with .bundleSha256 }}
        - name: FAULTLINE_BUNDLE_SHA256
          value: {{ . | quote }}
        {{- end }}
        {{- if gt (int $values.service.workers) 1 }}
        - name: PROMETHEUS_MULTIPROC_DIR  # counters shared by the worker processes
          value: /tmp/metrics
        {{- end }}
        {{- with $values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $values.probes }}
      startupProbe:
        httpGet: {path: /readyz, port: http}
        {{- toYaml .startup | nindent 8 }}
      readinessProbe:
        httpGet: {path: /readyz, port: http}
        {{- toYaml .readiness | nindent 8 }}
      livenessProbe:
        httpGet: {path: /healthz, port: http}
        {{- toYaml .liveness | nindent 8 }}
      {{- end }}
      lifecycle:
        preStop:
          exec:
            # keep serving while endpoints and load balancers stop sending new requests
            command: ["sleep", "{{ $values.lifecycle.preStopSeconds }}"]
      resources:
        {{- toYaml $values.resources | nindent 8 }}
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        runAsNonRoot: true
        capabilities:
          drop: [ALL]
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- with include "faultline.bundleMounts" $root }}{{ . | nindent 8 }}{{ end }}
        {{- if $values.auth.existingSecret }}
        - name: auth
          mountPath: /etc/faultline/auth
          readOnly: true
        {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    {{- if $values.auth.existingSecret }}
    - name: auth
      secret:
        secretName: {{ $values.auth.existingSecret }}
        defaultMode: 0440
    {{- end }}
    {{- with include "faultline.bundleVolumes" $root }}{{ . | nindent 4 }}{{ end }}
  topologySpreadConstraints:
    - maxSkew: 1
      topologyKey: kubernetes.io/hostname
      whenUnsatisfiable: ScheduleAnyway
      labelSelector:
        matchLabels:
          {{- include "faultline.selectorLabels" $root | nindent 10 }}
  {{- with $values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/*
The explainer's selector labels. Its own app.kubernetes.io/name: the service's selectors (name +
instance, immutable on existing Deployments) would otherwise select explainer pods, and the
service's Service would send predictions to them.
*/}}
{{- define "faultline.explainerSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-explainer" (include "faultline.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: explainer
{{- end }}

{{- define "faultline.explainerLabels" -}}
helm.sh/chart: {{ include "faultline.chart" . }}
{{ include "faultline.explainerSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: faultline
{{- end }}

{{- define "faultline.explainerName" -}}
{{- printf "%s-explainer" (include "faultline.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* FAULTLINE_EXPLAINER_URL of the service's pods: the explainer Service, in this namespace. */}}
{{- define "faultline.explainerURL" -}}
{{- printf "http://%s:%d" (include "faultline.explainerName" .) (int .Values.explainer.service.port) }}
{{- end }}

{{/*
The explainer's image values: explainer.image, with the tag (never the digest: another image)
of `image` when it names none, so one `--set image.tag=...` moves both images of one build.
*/}}
{{- define "faultline.explainerImage" -}}
{{- $image := deepCopy .Values.explainer.image }}
{{- if not (or $image.tag $image.digest) }}
{{- $_ := set $image "tag" .Values.image.tag }}
{{- end }}
{{- if not $image.pullPolicy }}
{{- $_ := set $image "pullPolicy" .Values.image.pullPolicy }}
{{- end }}
{{- toJson $image }}
{{- end }}
