"""``shenava``: a command line for any Shenava server (HTTP and, for the drop folder, S3 only).

Which endpoints it speaks, and why:

- uploads go to CPqD TRD v3 ``/trd/v3/job/create``: one multipart file with a per-job ``config``
  (language, speaker labels), any media, and a job id back at once; stops are TRD's ``job/stop``;
- status with progress, the newest-first job list, the transcript (media-time words, confidences,
  speakers, quality flags) and the drop-folder batches' files come from the console's JSON
  (``/ui/api``), because no vendor dialect has them; CSV is TRD's own;
- batches are the drop folder itself (S3, with the credentials of ``.shenava/endpoints.json``)
  and the TRD batch API (progress, ETA, results as a ZIP).

SRT, WebVTT, text and TSV are the server's rendering (``/ui/api/jobs/<id>/transcript?format=…``):
one renderer for the API, the console and this command line.
"""
