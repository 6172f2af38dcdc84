/** Azure DevOps' error answers: WrappedException JSON bodies and the sign-in page a bad PAT gets. */
import type { Response } from 'express';

export interface WrappedException {
  $id: '1';
  innerException: null;
  message: string;
  typeName: string;
  typeKey: string;
  errorCode: 0;
  eventId: number;
}

export function wrapped(
  message: string,
  typeName: string,
  typeKey: string,
  eventId = 3000,
): WrappedException {
  return { $id: '1', innerException: null, message, typeName, typeKey, errorCode: 0, eventId };
}

export const TYPE = {
  unauthorized:
    'Microsoft.TeamFoundation.Framework.Server.UnauthorizedRequestException, Microsoft.TeamFoundation.Framework.Server',
  accessCheck:
    'Microsoft.VisualStudio.Services.Security.AccessCheckException, Microsoft.VisualStudio.Services.WebApi',
  argument: 'System.ArgumentException, mscorlib',
  argumentNull: 'System.ArgumentNullException, mscorlib',
  requestBlocked:
    'Microsoft.TeamFoundation.Framework.Server.RequestBlockedException, Microsoft.TeamFoundation.Framework.Server',
  projectByName:
    'Microsoft.TeamFoundation.Core.WebApi.ProjectDoesNotExistWithNameException, Microsoft.TeamFoundation.Core.WebApi',
  projectById:
    'Microsoft.TeamFoundation.Core.WebApi.ProjectDoesNotExistException, Microsoft.TeamFoundation.Core.WebApi',
  endpointNotFound:
    'Microsoft.VisualStudio.Services.ServiceEndpoints.WebApi.ServiceEndpointNotFoundException, Microsoft.VisualStudio.Services.ServiceEndpoints.WebApi',
  versionNotSpecified:
    'Microsoft.VisualStudio.Services.WebApi.VssVersionNotSpecifiedException, Microsoft.VisualStudio.Services.WebApi',
  versionOutOfRange:
    'Microsoft.VisualStudio.Services.WebApi.VssVersionOutOfRangeException, Microsoft.VisualStudio.Services.WebApi',
  invalidPreview:
    'Microsoft.VisualStudio.Services.WebApi.VssInvalidPreviewVersionException, Microsoft.VisualStudio.Services.WebApi',
  invalidVersion:
    'Microsoft.VisualStudio.Services.WebApi.VssInvalidApiResourceVersionException, Microsoft.VisualStudio.Services.WebApi',
  resourceNotFound:
    'Microsoft.VisualStudio.Services.WebApi.VssResourceNotFoundException, Microsoft.VisualStudio.Services.WebApi',
  hostNotFound:
    'Microsoft.TeamFoundation.Framework.Server.HostDoesNotExistException, Microsoft.TeamFoundation.Framework.Server',
} as const;

export function sendError(res: Response, status: number, body: WrappedException): void {
  res.status(status).json(body);
}

/** Error JSON for injected faults (429 gets Azure DevOps' own throttling text). */
export function formatError(status: number, code: string, message: string): WrappedException {
  if (status === 429)
    return wrapped(
      "TF400733: The request has been canceled: Request was blocked due to exceeding usage of resource 'Core' in namespace 'User'. For more information on why your request was blocked, see the topic \"Rate limits\" on the Microsoft Web site (https://go.microsoft.com/fwlink/?LinkId=823950).",
      TYPE.requestBlocked,
      'RequestBlockedException',
    );
  return wrapped(
    message,
    `Microsoft.VisualStudio.Services.WebApi.${code}Exception, Microsoft.VisualStudio.Services.WebApi`,
    `${code}Exception`,
  );
}

export function argumentErrorBody(message: string, parameter: string): WrappedException {
  return wrapped(`${message}\r\nParameter name: ${parameter}`, TYPE.argument, 'ArgumentException', 0);
}

// ---------------------------------------------------------------------------------------------
// The HTML Azure DevOps serves instead of a 401 to a request with a bad PAT.

export const SIGN_IN_PAGE = `<!DOCTYPE html>
<html lang="en-US">
<head>
  <meta charset="utf-8">
  <title>Azure DevOps Services | Sign In</title>
  <meta name="viewport" content="width=device-width, initial-scale=1.0">
</head>
<body>
  <div id="signin">
    <h1>Azure DevOps</h1>
    <p>Sign in to your account to continue.</p>
    <a href="https://app.vssps.visualstudio.com/_signin?realm=dev.azure.com">Sign in</a>
  </div>
</body>
</html>
`;
