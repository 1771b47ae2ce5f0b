// Every front end mattes through the one engine, so a model option works in all of them:
// `semat serve --semat CKPT --refine` and `semat build-dataset --semat CKPT --refine` on the tiny
// SEMat fixture give what `semat matte --semat CKPT --refine` gives.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "coco_fixture.h"
#include "semat/core/net.h"
#include "semat/io/image_io.h"
#include "support/cli_test.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::string kDir = std::string(SEMAT_TEST_DATA) + "/semat_tiny/";
const std::string kBox = "12,5,218,209";

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string base64_decode(const std::string& in) {
  static const std::string chars =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int val = 0, bits = -8;
  for (char c : in) {
    const auto pos = chars.find(c);
    if (pos == std::string::npos) break;  // '=' padding
    val = (val << 6) + static_cast<int>(pos);
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xFF));
      bits -= 8;
    }
  }
  return out;
}

cv::Mat decode_gray(const std::string& png) {
  return cv::imdecode(std::vector<uchar>(png.begin(), png.end()), cv::IMREAD_UNCHANGED);
}

using EngineFrontEnds = semat::test::CliTest;

TEST_F(EngineFrontEnds, ServeWithSematAndRefineGivesTheCliMatte) {
  // The CLI's refined matte first.
  const auto cli = run("matte " + kDir + "image.png --box " + kBox + " --semat " + kDir +
                       "semat_tiny.pth --refine --json --out " + (dir_ / "cli").string());
  ASSERT_EQ(cli.code, 0) << cli.err;
  EXPECT_EQ(json::parse(cli.out)["engine"], "semat>semat>semat+refine");
  const cv::Mat cli_alpha = cv::imread((dir_ / "cli" / "alpha.png").string(), cv::IMREAD_UNCHANGED);
  ASSERT_FALSE(cli_alpha.empty());

  // The server, as a person starts it.
  const int port = semat::free_loopback_port();
  const fs::path pid_file = dir_ / "pid";
  const std::string cmd = std::string(SEMAT_BINARY) + " serve --port " + std::to_string(port) +
                          " --workers 1 --semat " + kDir + "semat_tiny.pth --refine >" +
                          (dir_ / "serve.out").string() + " 2>" + (dir_ / "serve.err").string() +
                          " & echo $! > " + pid_file.string();
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const pid_t pid = static_cast<pid_t>(std::stol(read_text(pid_file)));
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(120, 0);
  auto info = c.Get("/v1/info");
  for (int i = 0; i < 600 && !info; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    info = c.Get("/v1/info");
  }
  ASSERT_TRUE(info) << "the server did not start: " << read_text(dir_ / "serve.err");
  EXPECT_EQ(json::parse(info->body)["engine"], "semat>semat>semat+refine");
  EXPECT_EQ(json::parse(info->body)["method"], "semat>semat>semat+refine");
  EXPECT_EQ(json::parse(info->body)["model"], "semat-tiny");  // which model answers (web page)

  const std::string png = read_text(kDir + "image.png");
  const auto r = c.Post("/v1/matte", httplib::MultipartFormDataItems{
                                         {"image", png, "image.png", "image/png"},
                                         {"boxes", "[[12,5,218,209]]", "", ""},
                                         {"outputs", "alpha,trimap", "", ""}});
  kill(pid, SIGTERM);
  int status = 0;
  for (int i = 0; i < 300 && waitpid(pid, &status, WNOHANG) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  EXPECT_EQ(j["engine"], "semat>semat>semat+refine");
  EXPECT_EQ(j["model"], "semat-tiny");
  const cv::Mat alpha = decode_gray(base64_decode(j["outputs"]["alpha"].get<std::string>()));
  ASSERT_EQ(alpha.size(), cli_alpha.size());
  EXPECT_EQ(cv::norm(alpha, cli_alpha, cv::NORM_INF), 0) << "server and CLI disagree";
}

TEST_F(EngineFrontEnds, BuildDatasetWithSematAndRefineSharpensOnlyTheRulesBand) {
  fs::create_directories(dir_ / "images");
  semat::test::write_fixture(semat::test::person_scenes(2), (dir_ / "images").string(),
                             (dir_ / "ann.json").string());
  const std::string base = "build-dataset --annotations " + (dir_ / "ann.json").string() +
                           " --images " + (dir_ / "images").string() + " --semat " + kDir +
                           "semat_tiny.pth --min-score 0 --progress off --jobs 1 --json --out ";
  const auto plain = run(base + (dir_ / "plain").string());
  ASSERT_EQ(plain.code, 0) << plain.err;
  EXPECT_EQ(json::parse(plain.out)["engine"], "given>rule>semat");
  const auto refined = run(base + (dir_ / "refined").string() + " --refine");
  ASSERT_EQ(refined.code, 0) << refined.err;
  EXPECT_EQ(json::parse(refined.out)["engine"], "given>rule>semat+refine");

  std::ifstream idx(dir_ / "refined" / "index.jsonl");
  int n = 0, changed = 0;
  for (std::string line; std::getline(idx, line); ++n) {
    const json rec = json::parse(line);
    EXPECT_EQ(rec["backend"], "semat+refine");
    const std::string a = rec["alpha"], t = rec["trimap"];
    const cv::Mat ar = semat::io::read_gray8((dir_ / "refined" / a).string());
    const cv::Mat ap = semat::io::read_gray8((dir_ / "plain" / a).string());
    const cv::Mat tr = semat::io::read_gray8((dir_ / "refined" / t).string());
    const cv::Mat tp = semat::io::read_gray8((dir_ / "plain" / t).string());
    EXPECT_EQ(cv::norm(tr, tp, cv::NORM_INF), 0) << "the rule's trimap does not depend on the alpha stage";
    cv::Mat diff;
    cv::absdiff(ar, ap, diff);
    EXPECT_EQ(cv::countNonZero(diff & (tr != 128)), 0) << "refinement changed a known pixel";
    changed += cv::countNonZero(diff & (tr == 128));
  }
  EXPECT_EQ(n, 2);
  EXPECT_GT(changed, 0) << "refinement changed nothing";
}

TEST_F(EngineFrontEnds, ModelFlagsAreCheckedOnceTheSameWayEverywhere) {
  // A contradiction is refused with exit 2 and one line, before any file is read.
  for (const std::string cmd : {"matte x.png --box 1,1,5,5 --refine --alpha closed-form",
                                "serve --port 0 --refine --alpha closed-form",
                                "build-dataset --annotations a.json --images i --out o --refine "
                                "--alpha closed-form"}) {
    const auto r = run(cmd);
    EXPECT_EQ(r.code, 2) << cmd << "\n" << r.err;
    EXPECT_NE(r.err.find("contradict"), std::string::npos) << cmd << "\n" << r.err;
  }
}

}  // namespace
