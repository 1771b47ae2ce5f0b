// ViTMatte as the engine's alpha stage, end to end on the tiny fixture (tests/data/vitmatte_tiny):
// `semat matte --trimap T --vitmatte CKPT` writes the official network's alpha with the known
// pixels forced, a box's GrabCut trimap goes through the same network, `serve` and
// `build-dataset` take the same flag, `info` counts the official models, and a wrong checkpoint
// fails with one line.
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
#include "semat/io/checkpoint.h"
#include "semat/io/image_io.h"
#include "support/cli_test.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::string kDir = std::string(SEMAT_TEST_DATA) + "/vitmatte_tiny/";
const std::string kCkpt = kDir + "vitmatte_tiny.pth";

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string base64_decode(const std::string& in) {
  static const std::string chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int val = 0, bits = -8;
  for (char ch : in) {
    const auto pos = chars.find(ch);
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

cv::Mat reference_plane(const std::string& name) {
  const auto ref = semat::io::load_checkpoint(kDir + "reference_outputs.safetensors");
  const auto& t = ref.at(name);
  const int h = static_cast<int>(t.shape[t.shape.size() - 2]), w = static_cast<int>(t.shape.back());
  return cv::Mat(h, w, CV_32F, const_cast<std::uint8_t*>(t.bytes.data())).clone();
}

using CliVitMatte = semat::test::CliTest;

TEST_F(CliVitMatte, TrimapThroughTheNetworkIsTheOfficialAlphaWithKnownPixelsForced) {
  const fs::path out = dir_ / "out";
  const auto r = run("matte " + kDir + "image_pad.png --trimap " + kDir + "trimap_pad.png --vitmatte " +
                     kCkpt + " --device cpu --alpha-depth 16 --json --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string engine = json::parse(r.out)["engine"];
  EXPECT_NE(engine.find(">vitmatte"), std::string::npos) << engine;
  const cv::Mat a16 = cv::imread((out / "alpha.png").string(), cv::IMREAD_UNCHANGED);
  ASSERT_EQ(a16.type(), CV_16U);
  cv::Mat alpha;
  a16.convertTo(alpha, CV_32F, 1.0 / 65535.0);
  const cv::Mat want = reference_plane("pad.alpha_fixed");
  ASSERT_EQ(alpha.size(), want.size());
  EXPECT_LE(cv::norm(alpha, want, cv::NORM_INF), 5e-5);
}

TEST_F(CliVitMatte, DiffMatteIsTheOfficialSeededSampleWithKnownPixelsForced) {
  const std::string dm = std::string(SEMAT_TEST_DATA) + "/diffmatte_tiny/";
  const fs::path out = dir_ / "out";
  const auto r = run("matte " + dm + "image.png --trimap " + dm + "trimap.png --diffmatte " + dm +
                     "diffmatte_tiny.pth --device cpu --alpha-depth 16 --json --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string engine = json::parse(r.out)["engine"];
  EXPECT_NE(engine.find(">diffmatte"), std::string::npos) << engine;
  const cv::Mat a16 = cv::imread((out / "alpha.png").string(), cv::IMREAD_UNCHANGED);
  ASSERT_EQ(a16.type(), CV_16U);
  cv::Mat alpha;
  a16.convertTo(alpha, CV_32F, 1.0 / 65535.0);
  const auto ref = semat::io::load_checkpoint(dm + "reference_outputs.safetensors");
  const auto& t = ref.at("alpha_x255");
  cv::Mat want = cv::Mat(static_cast<int>(t.shape[0]), static_cast<int>(t.shape[1]), CV_32F,
                         const_cast<std::uint8_t*>(t.bytes.data())).clone() / 255.0;
  const cv::Mat trimap = semat::io::read_gray8(dm + "trimap.png");
  want.setTo(1.0f, trimap == 255);  // the engine forces the known foreground, DiffMatte does not
  ASSERT_EQ(alpha.size(), want.size());
  EXPECT_LE(cv::norm(alpha, want, cv::NORM_INF), 1e-4);
}

TEST_F(CliVitMatte, BoxTrimapFromGrabCutGoesThroughTheNetwork) {
  const fs::path out = dir_ / "out";
  const auto r = run("matte " + kDir + "image.png --box 60,30,200,190 --vitmatte " + kCkpt +
                     " --device cpu --json --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["engine"], "grabcut>rule>vitmatte");
  const cv::Mat alpha = semat::io::read_gray8((out / "alpha.png").string());
  const cv::Mat trimap = semat::io::read_gray8((out / "trimap.png").string());
  ASSERT_EQ(alpha.size(), trimap.size());
  EXPECT_EQ(cv::countNonZero(alpha & (trimap == 0)), 0) << "known background not 0";
  EXPECT_EQ(cv::countNonZero((alpha != 255) & (trimap == 255)), 0) << "known foreground not 255";
  // In the band the network's alpha, not a constant.
  double lo, hi;
  cv::minMaxLoc(alpha, &lo, &hi, nullptr, nullptr, trimap == 128);
  EXPECT_LT(lo, hi);
  // Past --vitmatte-max-pixels the network runs shrunk and closed-form sharpens the band: the
  // same trimap, known pixels still exact.
  const fs::path small = dir_ / "small";
  const auto s = run("matte " + kDir + "image.png --box 60,30,200,190 --vitmatte " + kCkpt +
                     " --vitmatte-max-pixels 16384 --device cpu --out " + small.string());
  ASSERT_EQ(s.code, 0) << s.err;
  const cv::Mat a2 = semat::io::read_gray8((small / "alpha.png").string());
  EXPECT_EQ(cv::norm(semat::io::read_gray8((small / "trimap.png").string()), trimap, cv::NORM_INF), 0);
  EXPECT_EQ(cv::countNonZero(a2 & (trimap == 0)), 0);
  EXPECT_EQ(cv::countNonZero((a2 != 255) & (trimap == 255)), 0);
  EXPECT_GT(cv::norm(a2, alpha, cv::NORM_L1), 0) << "the cap changed nothing";
}

TEST_F(CliVitMatte, WrongCheckpointsAndFlagsFailWithOneLine) {
  const fs::path out = dir_ / "out";
  const auto r = run("matte " + kDir + "image.png --box 60,30,200,190 --vitmatte " +
                     std::string(SEMAT_TEST_DATA) + "/sam_tiny/sam_tiny.pth --out " + out.string());
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("not ViTMatte"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out / "alpha.png"));
  const auto r2 = run("matte " + kDir + "image.png --box 60,30,200,190 --alpha vitmatte --out " + out.string());
  EXPECT_EQ(r2.code, 2) << r2.err;
  EXPECT_NE(r2.err.find("--vitmatte CKPT"), std::string::npos) << r2.err;
  const auto r3 = run("matte " + kDir + "image.png --box 60,30,200,190 --vitmatte " + kCkpt +
                      " --alpha closed-form --out " + out.string());
  EXPECT_EQ(r3.code, 2) << r3.err;
}

TEST_F(CliVitMatte, InfoCountsTheOfficialModels) {
  for (const auto& [arch, n] : std::vector<std::pair<std::string, long>>{
           {"vitmatte-s", 25814753}, {"vitmatte-b", 96686561}, {"vitmatte-tiny", 635537},
           {"diffmatte-vits", 29014273}, {"diffmatte-vitb", 101458945}, {"diffmatte-vits-1024", 29047041}}) {
    const auto r = run("info --arch " + arch + " --json");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(json::parse(r.out)["all_parameters"], n) << arch;
  }
}

TEST_F(CliVitMatte, BuildDatasetMattesTheRulesTrimapsWithTheNetwork) {
  fs::create_directories(dir_ / "images");
  semat::test::write_fixture(semat::test::person_scenes(2), (dir_ / "images").string(),
                             (dir_ / "ann.json").string());
  const auto r = run("build-dataset --annotations " + (dir_ / "ann.json").string() + " --images " +
                     (dir_ / "images").string() + " --vitmatte " + kCkpt +
                     " --device cpu --min-score 0 --progress off --jobs 1 --json --out " + (dir_ / "ds").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["engine"], "given>rule>vitmatte");
  std::ifstream idx(dir_ / "ds" / "index.jsonl");
  int n = 0;
  for (std::string line; std::getline(idx, line); ++n) {
    const json rec = json::parse(line);
    EXPECT_EQ(rec["backend"], "vitmatte");
    const cv::Mat a = semat::io::read_gray8((dir_ / "ds" / rec["alpha"].get<std::string>()).string());
    const cv::Mat t = semat::io::read_gray8((dir_ / "ds" / rec["trimap"].get<std::string>()).string());
    EXPECT_EQ(cv::countNonZero(a & (t == 0)), 0);
    EXPECT_EQ(cv::countNonZero((a != 255) & (t == 255)), 0);
  }
  EXPECT_EQ(n, 2);
}

TEST_F(CliVitMatte, ServeWithVitMatteGivesTheCliMatte) {
  const std::string box = "60,30,200,190";
  const auto cli = run("matte " + kDir + "image.png --box " + box + " --vitmatte " + kCkpt +
                       " --device cpu --out " + (dir_ / "cli").string());
  ASSERT_EQ(cli.code, 0) << cli.err;
  const cv::Mat cli_alpha = cv::imread((dir_ / "cli" / "alpha.png").string(), cv::IMREAD_UNCHANGED);
  const int port = semat::free_loopback_port();
  const fs::path pid_file = dir_ / "pid";
  const std::string cmd = std::string(SEMAT_BINARY) + " serve --port " + std::to_string(port) +
                          " --workers 1 --device cpu --vitmatte " + kCkpt + " >" + (dir_ / "serve.out").string() +
                          " 2>" + (dir_ / "serve.err").string() + " & echo $! > " + pid_file.string();
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
  EXPECT_EQ(json::parse(info->body)["engine"], "grabcut>rule>vitmatte");
  const std::string png = read_text(kDir + "image.png");
  const auto r = c.Post("/v1/matte", httplib::MultipartFormDataItems{
                                         {"image", png, "image.png", "image/png"},
                                         {"boxes", "[[60,30,200,190]]", "", ""},
                                         {"outputs", "alpha", "", ""}});
  kill(pid, SIGTERM);
  int status = 0;
  for (int i = 0; i < 300 && waitpid(pid, &status, WNOHANG) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  EXPECT_EQ(j["engine"], "grabcut>rule>vitmatte");
  const std::string bytes = base64_decode(j["outputs"]["alpha"].get<std::string>());
  const cv::Mat alpha = cv::imdecode(std::vector<uchar>(bytes.begin(), bytes.end()), cv::IMREAD_UNCHANGED);
  ASSERT_EQ(alpha.size(), cli_alpha.size());
  EXPECT_EQ(cv::norm(alpha, cli_alpha, cv::NORM_INF), 0) << "server and CLI disagree";
}

}  // namespace
