# escape=`
# expect: nothing -- a Windows image: PowerShell runs its RUN lines (ShellCheck does not apply), words in a string are no install
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
SHELL ["powershell", "-Command", "$ErrorActionPreference = 'Stop';"]
RUN Write-Host 'no pip install here'; New-Item -ItemType Directory C:\app | Out-Null
USER ContainerUser
ENTRYPOINT ["C:\\app\\app.exe"]
