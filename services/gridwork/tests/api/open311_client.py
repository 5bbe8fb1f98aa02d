"""An Open311 client that gridwork did not write, driving /open311/v2/.

Reads go through georeport (PyPI, 0.3.1, "Python wrapper for the Open311
GeoReport v2 API"): the service list, a service definition, one request and
a list of requests by id, in JSON and in XML (parsed by its xmltodict).
georeport cannot create requests ("does not currently support the creation
of new 311 service requests"), so the post goes through three (PyPI, 0.8.0,
Code for America's Open311 wrapper), which sends GeoReport's form fields with
api_key and jurisdiction_id. three was written for Python 2; the only
adaptation is the name itertools.ifilter, which it imports.

Usage: open311_client.py BASE_URL API_KEY JURISDICTION SERVICE_CODE LAT LONG
Prints one JSON object with what the clients returned.
"""

import itertools
import json
import sys

itertools.ifilter = filter  # three 0.8.0 imports this Python 2 name

import requests  # noqa: E402
import three  # noqa: E402
from georeport import GeoReport  # noqa: E402


def main():
    base, key, jurisdiction, code, lat, lon = sys.argv[1:7]
    root = base.rstrip("/") + "/open311/v2"
    out = {}

    client = GeoReport(root, jurisdiction=jurisdiction, api_key=key)
    xml_client = GeoReport(root, jurisdiction=jurisdiction, output_format="xml")
    out["services"] = client.get_service_list()
    out["services_xml"] = xml_client.get_service_list()
    out["definition"] = client.get_service_definition(code)
    out["definition_xml"] = xml_client.get_service_definition(code)

    poster = three.Three(root, jurisdiction=jurisdiction, api_key=key)
    out["posted"] = poster.post(
        code,
        address="威海市环翠区 & 海滨北路 <1号>",
        description="楼道堆放杂物，邻里多次争吵",
        lat=lat,
        long=lon,
        email="caller@example.com",
        phone="13900000000",
    )
    out["posted_status"] = poster.post_response.status_code
    rid = out["posted"][0]["service_request_id"]

    out["request"] = client.get_service_request(rid)
    out["request_xml"] = xml_client.get_service_request(rid)
    out["requests"] = client.get_service_requests(service_request_id=rid)

    # Refused through the same client: a key gridwork never issued.
    bad = three.Three(root, jurisdiction=jurisdiction, api_key="gw311_not-a-key")
    out["bad_key"] = bad.post(code, description="x", lat=lat, long=lon)
    out["bad_key_status"] = bad.post_response.status_code

    # georeport raises on an error status; the body is GeoReport's error array.
    try:
        client.get_service_request("00000000-0000-4000-8000-000000000000")
        out["missing"] = None
    except requests.HTTPError as e:
        out["missing"] = {"status": e.response.status_code, "body": e.response.json()}

    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
