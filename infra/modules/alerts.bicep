// Azure Monitor alerts on the events the service sends to Application Insights (customEvents; see
// src/remediation/run.ts and src/functions/context.ts), an action group that delivers them (email,
// optional webhook), and an optional workbook of rotation history. Log search alerts are
// stateful (autoMitigate): one alert per connection that stays open until the condition clears.

@description('Azure region of the alert rules and the workbook (the Application Insights region).')
param location string

@description('Tags applied to every resource.')
param tags object = {}

@description('Name of the Application Insights component the queries run against.')
param appInsightsName string

@description('Name of the action group.')
param actionGroupName string

@description('Prefix of the alert rule names.')
param alertNamePrefix string

@description('Email addresses that receive the alerts (may be empty).')
param alertEmailAddresses array = []

@description('Webhook that receives the alerts in the common alert schema (Teams, Slack, an ITSM); empty: none.')
@secure()
param alertWebhookUrl string = ''

@description('A secret ending within this many days that is still not rotated raises an alert.')
@minValue(1)
@maxValue(30)
param expiringAlertDays int = 7

@description('Hours without a completed nightly run before the "run died silently" alert fires (a nightly schedule plus slack).')
@minValue(25)
@maxValue(48)
param missedRunAlertHours int = 26

@description('Deploy the rotation history workbook.')
param deployWorkbook bool = true

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: actionGroupName
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'scremediate'
    enabled: true
    emailReceivers: [
      for (address, i) in alertEmailAddresses: {
        name: 'email-${i}'
        emailAddress: address
        useCommonAlertSchema: true
      }
    ]
    webhookReceivers: empty(alertWebhookUrl) ? [] : [
      {
        name: 'webhook'
        serviceUri: alertWebhookUrl
        useCommonAlertSchema: true
      }
    ]
  }
}

// 1. A remediation failed: the rotation or repair of a connection ended in `failed`.
var remediationFailedQuery = '''
customEvents
| where name == "RemediationFailed"
| extend organization = tostring(customDimensions.organization), connectionName = tostring(customDimensions.connectionName), connectionId = tostring(customDimensions.connectionId), error = tostring(customDimensions.error)
| summarize failures = count(), lastError = take_any(error) by organization, connectionName, connectionId
'''

// 2. A connection needs a person: app deleted or disabled, no role on the subscription, policy
// forbids secrets, not owned... The nightly run reports it again every night until it is fixed.
var needsAttentionQuery = '''
customEvents
| where name == "ConnectionNeedsAttention"
| extend organization = tostring(customDimensions.organization), connectionName = tostring(customDimensions.connectionName), connectionId = tostring(customDimensions.connectionId), cause = tostring(customDimensions.cause)
| summarize arg_max(timestamp, cause, finding = tostring(customDimensions.finding)) by organization, connectionName, connectionId
'''

// 3. The nightly run died silently: no RunCompleted from the timer in the last hours. A failed run
// still sends RunCompleted (status failed, alert 1 or the run's own failure), so silence means the
// timer never fired or the host died mid-run.
var noRunQuery = '''
customEvents
| where name == "RunCompleted"
| where tostring(customDimensions.trigger) == "timer"
'''

// 4. A secret ends within N days and is still not rotated: the latest SecretExpiringSoon of a
// connection says so and no ConnectionRemediated came after it.
var expiringQueryTemplate = '''
let remediated = customEvents
| where name == "ConnectionRemediated"
| summarize lastRemediated = max(timestamp) by connectionId = tostring(customDimensions.connectionId);
customEvents
| where name == "SecretExpiringSoon"
| extend connectionId = tostring(customDimensions.connectionId), daysLeft = toint(customDimensions.daysLeft)
| summarize arg_max(timestamp, daysLeft, organization = tostring(customDimensions.organization), connectionName = tostring(customDimensions.connectionName), expiresAt = tostring(customDimensions.expiresAt)) by connectionId
| where daysLeft <= __DAYS__
| join kind=leftouter remediated on connectionId
| where isnull(lastRemediated) or lastRemediated < timestamp
| project organization, connectionName, connectionId, daysLeft, expiresAt
'''
var expiringQuery = replace(expiringQueryTemplate, '__DAYS__', string(expiringAlertDays))

var perConnection = [
  {
    name: 'organization'
    operator: 'Include'
    values: [
      '*'
    ]
  }
  {
    name: 'connectionName'
    operator: 'Include'
    values: [
      '*'
    ]
  }
]

resource remediationFailed 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${alertNamePrefix}remediation-failed'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'sc-remediator: a remediation failed'
    description: 'The rotation or repair of a service connection failed. The alert names the connection; the run report (HTTP API, status page) has the error and the diagnosis.'
    severity: 1
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: remediationFailedQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: perConnection
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

resource needsAttention 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${alertNamePrefix}connection-needs-attention'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'sc-remediator: a service connection needs a person'
    description: 'A connection cannot be fixed automatically (app deleted or disabled, missing role assignment, app management policy, not owned by the identity). The alert carries the cause; sc-remediator scan prints the next step.'
    severity: 2
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT1H'
    windowSize: 'PT1H'
    overrideQueryTimeRange: 'PT${missedRunAlertHours}H'
    criteria: {
      allOf: [
        {
          query: needsAttentionQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: perConnection
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

resource noRun 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${alertNamePrefix}nightly-run-missing'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'sc-remediator: no completed nightly run in ${missedRunAlertHours} hours'
    description: 'No RunCompleted event from the nightly timer: the run died silently (host down, deployment broken, timer not firing, settings invalid at start-up). Check the function app and its invocations.'
    severity: 1
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT1H'
    windowSize: 'PT1H'
    overrideQueryTimeRange: 'PT${missedRunAlertHours}H'
    criteria: {
      allOf: [
        {
          query: noRunQuery
          timeAggregation: 'Count'
          operator: 'LessThan'
          threshold: 1
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

resource expiringNotRotated 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${alertNamePrefix}secret-expiring-not-rotated'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'sc-remediator: a secret expires within ${expiringAlertDays} days and is still not rotated'
    description: 'The latest nightly run saw a connection secret ending within ${expiringAlertDays} days and did not rotate it. Pipelines using the connection break when it expires.'
    severity: 1
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT1H'
    windowSize: 'PT1H'
    overrideQueryTimeRange: 'PT${missedRunAlertHours}H'
    criteria: {
      allOf: [
        {
          query: expiringQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: perConnection
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

// Rotation history: what each night did, which secrets end soon, what needs a person.
var workbookContent = {
  version: 'Notebook/1.0'
  items: [
    {
      type: 1
      content: {
        json: '## sc-remediator: rotation history\nRuns, rotations, failures and expiring secrets from the events the service sends to Application Insights.'
      }
      name: 'title'
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        query: 'customEvents\n| where name == "RunCompleted"\n| project timestamp, trigger = tostring(customDimensions.trigger), status = tostring(customDimensions.status), dryRun = tostring(customDimensions.dryRun), total = toint(customDimensions.total), succeeded = toint(customDimensions.succeeded), failed = toint(customDimensions.failed), needsAttention = toint(customDimensions.needsAttention)\n| order by timestamp desc'
        size: 0
        title: 'Runs'
        timeContext: {
          durationMs: 2592000000
        }
        queryType: 0
        resourceType: 'microsoft.insights/components'
      }
      name: 'runs'
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        query: 'customEvents\n| where name in ("ConnectionRemediated", "RemediationFailed")\n| project timestamp, event = name, organization = tostring(customDimensions.organization), connection = tostring(customDimensions.connectionName), action = tostring(customDimensions.action), finding = tostring(customDimensions.finding), error = tostring(customDimensions.error)\n| order by timestamp desc'
        size: 0
        title: 'Rotations and repairs'
        timeContext: {
          durationMs: 7776000000
        }
        queryType: 0
        resourceType: 'microsoft.insights/components'
      }
      name: 'rotations'
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        query: 'customEvents\n| where name == "SecretExpiringSoon"\n| summarize arg_max(timestamp, daysLeft = toint(customDimensions.daysLeft), expiresAt = tostring(customDimensions.expiresAt), organization = tostring(customDimensions.organization), connection = tostring(customDimensions.connectionName)) by connectionId = tostring(customDimensions.connectionId)\n| order by daysLeft asc'
        size: 0
        title: 'Secrets ending soon (latest run)'
        timeContext: {
          durationMs: 172800000
        }
        queryType: 0
        resourceType: 'microsoft.insights/components'
      }
      name: 'expiring'
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        query: 'customEvents\n| where name == "ConnectionNeedsAttention"\n| summarize arg_max(timestamp, cause = tostring(customDimensions.cause), finding = tostring(customDimensions.finding), organization = tostring(customDimensions.organization), connection = tostring(customDimensions.connectionName)) by connectionId = tostring(customDimensions.connectionId)'
        size: 0
        title: 'Needs a person (latest run)'
        timeContext: {
          durationMs: 172800000
        }
        queryType: 0
        resourceType: 'microsoft.insights/components'
      }
      name: 'attention'
    }
  ]
  fallbackResourceIds: [
    appInsights.id
  ]
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = if (deployWorkbook) {
  name: guid(resourceGroup().id, appInsights.id, 'sc-remediator-rotation-history')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'sc-remediator rotation history'
    category: 'workbook'
    sourceId: appInsights.id
    serializedData: string(workbookContent)
  }
}

@description('Resource id of the action group (attach more receivers to it).')
output actionGroupId string = actionGroup.id
