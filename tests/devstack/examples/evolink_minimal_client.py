"""Minimal evolink client written from the provider page alone (unified-kling-o1-video-edit.md).

usage: evolink_minimal_client.py BASE_URL API_KEY VIDEO_URL [PROMPT] [POLL_SECONDS]

Creates a kling-o1-video-edit task, polls GET {BASE_URL}/v1/tasks/{id} until it is completed
or failed, and prints the result URL (exit 0) or the error (exit 1).
"""

import sys
import time

import requests


def main() -> int:
    base_url, api_key, video_url = sys.argv[1], sys.argv[2], sys.argv[3]
    prompt = sys.argv[4] if len(sys.argv) > 4 else "Make the video more cinematic"
    poll = float(sys.argv[5]) if len(sys.argv) > 5 else 10.0
    headers = {"Authorization": f"Bearer {api_key}"}

    resp = requests.post(
        f"{base_url}/v1/videos/generations",
        json={"model": "kling-o1-video-edit", "prompt": prompt, "video_urls": [video_url]},
        headers=headers,
        timeout=30,
    )
    if resp.status_code != 200:
        print(f"Error: {resp.status_code} - {resp.text}")
        return 1
    task = resp.json()
    print("Task ID:", task["id"], "estimated_time:", task["task_info"]["estimated_time"])

    deadline = time.time() + 1000
    while time.time() < deadline:
        task = requests.get(f"{base_url}/v1/tasks/{task['id']}", headers=headers, timeout=30).json()
        if task["status"] == "completed":
            print("Result URL:", task["results"][0])
            return 0
        if task["status"] == "failed":
            print("Failed:", task["error"])
            return 1
        print(f"Status: {task['status']} ({task['progress']}%)")
        time.sleep(poll)
    print("Timeout reached.")
    return 1


if __name__ == "__main__":
    sys.exit(main())
