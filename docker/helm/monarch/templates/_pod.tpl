{{/*
The server's pod, shared by the StatefulSet (one node; its data volume from
volumeClaimTemplates) and the Deployment (shared nodes on one PostgreSQL database; its data
volume an emptyDir, holding only the lock file and the spill files of large sorts). Everything
else the pod gets is the same in both.
*/}}
{{- define "monarch.podTemplate" -}}
metadata:
  labels:
    {{- include "monarch.selectorLabels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    # A new config file rolls the pod (SIGHUP applies runtime settings without one).
    checksum/config: {{ .Values.config | sha256sum }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
  {{- if .Values.tls.enabled }}
  initContainers:
    # The server reads one PEM file holding the certificate and its key.
    - name: tls-pem
      image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      command: ["/bin/sh", "-c", "cat /tls/tls.crt /tls/tls.key > /run/monarch/tls/server.pem"]
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: tls-secret
          mountPath: /tls
          readOnly: true
        - name: tls-pem
          mountPath: /run/monarch/tls
  {{- end }}
  containers:
    - name: monarch
      image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        - --bind_ip_all
        - --port
        - {{ .Values.ports.mongodb | quote }}
        - --adminPort
        - {{ .Values.ports.admin | quote }}
        # The probes and Prometheus reach the admin port on the pod's address.
        - --adminBindIp
        - 0.0.0.0
        - --config
        - /etc/monarch/monarch.toml
        - --storageEngine
        - {{ .Values.storageEngine | quote }}
        {{- if eq .Values.storageEngine "postgres" }}
        - --pgUri
        - {{ .Values.postgres.uri | quote }}
        {{- if .Values.postgres.sharedNodes }}
        - --pgSharedNodes
        {{- end }}
        {{- if .Values.postgres.passwordSecret }}
        - --pgPasswordFile
        - /run/monarch/postgres/{{ .Values.postgres.passwordKey }}
        {{- end }}
        {{- end }}
        {{- with .Values.cacheSizeGB }}
        - --cacheSizeGB
        - {{ . | quote }}
        {{- end }}
        {{- if .Values.tls.enabled }}
        - --tlsMode
        - {{ .Values.tls.mode }}
        - --tlsCertificateKeyFile
        - /run/monarch/tls/server.pem
        {{- if .Values.tls.clientCA }}
        - --tlsCAFile
        - /tls/ca.crt
        {{- end }}
        {{- if .Values.tls.admin }}
        - --adminTls
        {{- end }}
        {{- end }}
        {{- if .Values.adminToken.existingSecret }}
        - --adminTokenFile
        - /run/monarch/admin-token/{{ .Values.adminToken.key }}
        {{- end }}
        {{- range .Values.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      env:
        {{- if .Values.auth.rootUsername }}
        - name: MONGO_INITDB_ROOT_USERNAME
          value: {{ .Values.auth.rootUsername | quote }}
        - name: MONGO_INITDB_ROOT_PASSWORD
          valueFrom:
            secretKeyRef:
              name: {{ include "monarch.authSecret" . }}
              key: {{ .Values.auth.rootPasswordKey }}
        {{- end }}
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - name: mongodb
          containerPort: {{ .Values.ports.mongodb }}
          protocol: TCP
        - name: admin
          containerPort: {{ .Values.ports.admin }}
          protocol: TCP
      startupProbe:
        httpGet:
          path: /livez
          port: admin
          scheme: {{ include "monarch.adminScheme" . }}
        periodSeconds: {{ .Values.probes.startup.periodSeconds }}
        failureThreshold: {{ .Values.probes.startup.failureThreshold }}
      livenessProbe:
        httpGet:
          path: /livez
          port: admin
          scheme: {{ include "monarch.adminScheme" . }}
        periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
        timeoutSeconds: {{ .Values.probes.liveness.timeoutSeconds }}
        failureThreshold: {{ .Values.probes.liveness.failureThreshold }}
      readinessProbe:
        httpGet:
          path: /readyz
          port: admin
          scheme: {{ include "monarch.adminScheme" . }}
        periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
        timeoutSeconds: {{ .Values.probes.readiness.timeoutSeconds }}
        failureThreshold: {{ .Values.probes.readiness.failureThreshold }}
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: data
          mountPath: /data/db
        - name: config
          mountPath: /etc/monarch
          readOnly: true
        # The root filesystem is read-only; the entrypoint's init scripts use /tmp.
        - name: tmp
          mountPath: /tmp
        {{- if .Values.tls.enabled }}
        - name: tls-secret
          mountPath: /tls
          readOnly: true
        - name: tls-pem
          mountPath: /run/monarch/tls
          readOnly: true
        {{- end }}
        {{- if .Values.adminToken.existingSecret }}
        - name: admin-token
          mountPath: /run/monarch/admin-token
          readOnly: true
        {{- end }}
        {{- if and (eq .Values.storageEngine "postgres") .Values.postgres.passwordSecret }}
        - name: postgres-password
          mountPath: /run/monarch/postgres
          readOnly: true
        {{- end }}
        {{- if and (eq .Values.storageEngine "postgres") .Values.postgres.caSecret }}
        - name: postgres-ca
          mountPath: /run/monarch/postgres-ca
          readOnly: true
        {{- end }}
  volumes:
    {{- if include "monarch.sharedNodes" . }}
    # The data directory of a shared node: the lock file and the spill files of large sorts,
    # nothing that outlives the pod (the StatefulSet's comes from volumeClaimTemplates).
    - name: data
      emptyDir: {}
    {{- end }}
    - name: config
      configMap:
        name: {{ include "monarch.fullname" . }}
    - name: tmp
      emptyDir: {}
    {{- if .Values.tls.enabled }}
    - name: tls-secret
      secret:
        secretName: {{ .Values.tls.secretName }}
    - name: tls-pem
      emptyDir:
        medium: Memory
    {{- end }}
    {{- if .Values.adminToken.existingSecret }}
    - name: admin-token
      secret:
        secretName: {{ .Values.adminToken.existingSecret }}
    {{- end }}
    {{- if and (eq .Values.storageEngine "postgres") .Values.postgres.passwordSecret }}
    - name: postgres-password
      secret:
        secretName: {{ .Values.postgres.passwordSecret }}
    {{- end }}
    {{- if and (eq .Values.storageEngine "postgres") .Values.postgres.caSecret }}
    - name: postgres-ca
      secret:
        secretName: {{ .Values.postgres.caSecret }}
        items:
          - key: {{ .Values.postgres.caKey }}
            path: {{ .Values.postgres.caKey }}
    {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
